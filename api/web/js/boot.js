// A classic script, so it runs even when the ES modules fail to load (a network error, an old
// browser): if the console has not started after a while, say so instead of leaving a blank page.
(function () {
  var WAIT_MS = 8000;
  setTimeout(function () {
    if (window.gsfStarted) return;
    var main = document.getElementById('main');
    var p = document.createElement('p');
    p.className = 'form-error';
    p.setAttribute('role', 'alert');
    p.textContent = 'The console did not start: its scripts could not be loaded. Check your connection and reload the page.';
    main.replaceChildren(p);
  }, WAIT_MS);
}());
