// codebook-monitor console: keep the browser's time zone in the cbm_tz cookie (On-call and Incidents pages
// show times in it). A page opened with ?tz=... sets the cookie server-side; this only fills it when missing,
// then reloads once so the page is drawn in that zone.
(function () {
  "use strict";
  if (/(^|;\s*)cbm_tz=/.test(document.cookie)) { return; }
  var zone;
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { return; }
  if (!zone || !/^[A-Za-z0-9_+\-\/]{1,64}$/.test(zone)) { return; }
  document.cookie = "cbm_tz=" + zone + "; path=/ui; max-age=31536000; samesite=lax";
  var kept = /(^|;\s*)cbm_tz=/.test(document.cookie);  // cookies refused: no reload loop
  if (kept && zone !== "UTC" && !/[?&]tz=/.test(window.location.search)) { window.location.reload(); }
})();
