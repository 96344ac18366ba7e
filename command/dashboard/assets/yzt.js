/* 粤政图 dashboard: functions the dash-leaflet GeoJSON layers call by name ({variable: "yzt.point"}).
   Points are drawn as canvas-friendly circle markers; the tooltip says when a layer is synthetic.
   Every name from data (a layer row, a township, a road) is put on the page as TEXT (textContent), never as
   HTML: a row named <img src=x onerror=...> shows those characters and runs nothing. */
window.yzt = Object.assign({}, window.yzt, {
  /* a DOM node holding ``s`` as text: what Leaflet's tooltips and divIcons are given instead of a string */
  text: function (s, className) {
    var el = document.createElement("span");
    if (className) { el.className = className; }
    el.textContent = (s === undefined || s === null) ? "" : String(s);
    return el;
  },
  /* the map container carries yzt-zge-N for every zoom N it is at or above: CSS shows township names from
     zoom 11 and community names from 14 (yzt.css), so the officer sees more names as they zoom in */
  hookZoom: function (map) {
    if (!map || map._yztZoom) { return; }
    map._yztZoom = true;
    var set = function () {
      var el = map.getContainer(), z = Math.round(map.getZoom());
      for (var n = 0; n <= 20; n++) { el.classList.toggle("yzt-zge-" + n, z >= n); }
    };
    map.on("zoomend", set);
    set();
  },
  point: function (feature, latlng, context) {
    var h = (context && context.hideout) || {};
    var p = feature.properties || {};
    var m = L.circleMarker(latlng, {radius: h.radius || 5, color: h.color || "#333", weight: 1,
                                    fillColor: h.color || "#333", fillOpacity: 0.85});
    var label = (p.n || p.id || "") + (h.tag ? " · " + h.tag : "");
    m.bindTooltip(window.yzt.text(label));
    return m;
  },
  cluster: function (feature, latlng, index, context) {
    var h = (context && context.hideout) || {};
    var n = feature.properties.point_count;
    var size = n < 100 ? 30 : (n < 1000 ? 36 : 44);
    var outer = document.createElement("div");
    outer.style.background = h.color || "#555";
    outer.appendChild(window.yzt.text(feature.properties.point_count_abbreviated));
    var icon = L.divIcon({html: outer, className: "yzt-cluster", iconSize: L.point(size, size)});
    return L.marker(latlng, {icon: icon, title: (h.tag || "") + " ×" + n});
  },
  /* a place name at its point (district, township, community): text in a divIcon, no marker */
  label: function (feature, latlng, context) {
    var h = (context && context.hideout) || {};
    var p = feature.properties || {};
    var icon = L.divIcon({html: window.yzt.text(p.name, "yzt-lbl-text"),
                          className: "yzt-lbl yzt-lbl-" + (h.level || "place"), iconSize: null});
    var m = L.marker(latlng, {icon: icon, interactive: false, keyboard: false});
    m.on("add", function () { window.yzt.hookZoom(m._map); });
    return m;
  },
  road: function (feature, layer) {
    var p = feature.properties || {};
    if (p.name) { layer.bindTooltip(window.yzt.text(p.name), {sticky: true}); }
  },
  roadStyle: function (feature, context) {
    return {color: "#9a6b1f", weight: 2, opacity: 0.8};
  },
  adminStyle: function (feature, context) {
    var h = (context && context.hideout) || {};
    return {color: h.color || "#555", weight: h.weight || 1, fill: false, opacity: 0.9};
  }
});

/* A click on a list row or an incident marker selects the incident, in the browser: the rows and markers
   carry data-incident, and no server callback listens to their clicks (a pattern callback over every row
   fired a round trip with every row each time the list changed). */
document.addEventListener("click", function (ev) {
  var el = ev.target && ev.target.closest ? ev.target.closest("[data-incident]") : null;
  if (!el || !(el.closest("#list-items") || el.classList.contains("yzt-inc-marker"))) { return; }
  var id = el.getAttribute("data-incident");
  if (id && window.dash_clientside && window.dash_clientside.set_props) {
    window.dash_clientside.set_props("incident-selected", {data: id});
  }
}, true);
