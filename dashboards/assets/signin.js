/* smart-policing-twin: every update the dashboards send carries the session's CSRF token
   (from a cookie only this site can read); when the session has ended (401), the page goes
   to the sign-in page and comes back here after. */
(function () {
  var send = window.fetch;
  function csrf() {
    var m = document.cookie.match(/(?:^|; )twin_csrf=([^;]*)/);
    return m ? decodeURIComponent(m[1]) : "";
  }
  window.fetch = function (input, init) {
    init = init || {};
    var method = (init.method || "GET").toUpperCase();
    if (method !== "GET" && method !== "HEAD") {
      var headers = new Headers(init.headers || {});
      headers.set("X-CSRF-Token", csrf());
      init.headers = headers;
    }
    return send.call(this, input, init).then(function (r) {
      if (r.status === 401) {
        var here = location.pathname + location.search;
        location.assign("/signin?expired=1&next=" + encodeURIComponent(here));
      }
      return r;
    });
  };
})();
