/* 粤政图: add the session's CSRF token (cookie yzt_csrf, SameSite=Strict) to every same-origin POST the
   dashboard makes (Dash callbacks POST to /_dash-update-component); the server refuses a POST without it. */
(function () {
  function token() {
    var m = document.cookie.match(/(?:^|;\s*)yzt_csrf=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  }
  function sameOrigin(url) {
    try { return new URL(url, window.location.href).origin === window.location.origin; }
    catch (e) { return false; }
  }
  var original = window.fetch;
  window.fetch = function (input, init) {
    init = init || {};
    var method = (init.method || (input && input.method) || "GET").toUpperCase();
    var url = typeof input === "string" ? input : (input && input.url) || "";
    if (method !== "GET" && method !== "HEAD" && sameOrigin(url)) {
      var headers = new Headers(init.headers || (input && input.headers) || {});
      headers.set("X-CSRF-Token", token());
      init = Object.assign({}, init, {headers: headers, credentials: "same-origin"});
    }
    return original.call(this, input, init);
  };
})();
