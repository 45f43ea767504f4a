// Hostile: never finishes loading: an endless loop at module load time. The watchdog starts
// before any game code runs, so even this ends with exit code 4.
for (;;) { /* never yields */ }
