// Loads the console (js/app.js and its modules) from a classic script, so a failure is seen:
// a module that could not be fetched (Chromium drops requests in flight when network interfaces
// change, as Docker does when it starts a container) reloads the page with backoff, a few times,
// and then says so instead of leaving a blank page.
(function () {
  var KEY = 'gsf.bootAttempts';
  var MAX_ATTEMPTS = 3;
  var START_TIMEOUT_MS = 15000;

  function show(text) {
    var main = document.getElementById('main');
    var p = document.createElement('p');
    p.className = 'form-error';
    p.setAttribute('role', 'alert');
    p.textContent = text;
    main.replaceChildren(p);
  }

  var handled = false;

  function failed() {
    if (window.gsfStarted || handled) return;
    handled = true;
    var attempts = Number(sessionStorage.getItem(KEY) || 0);
    if (attempts < MAX_ATTEMPTS) {
      sessionStorage.setItem(KEY, String(attempts + 1));
      var wait = 500 * Math.pow(2, attempts);
      show('The console could not load its scripts; trying again in ' + Math.round(wait / 1000 * 10) / 10 + ' s.');
      setTimeout(function () { location.reload(); }, wait);
    } else {
      sessionStorage.removeItem(KEY);
      show('The console did not start: its scripts could not be loaded. Check your connection and reload the page.');
    }
  }

  var script = document.createElement('script');
  script.type = 'module';
  script.src = 'js/app.js';
  script.addEventListener('error', failed); // fired when any module of the graph fails to load
  document.head.appendChild(script);
  setTimeout(failed, START_TIMEOUT_MS);
}());
