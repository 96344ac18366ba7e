/* 粤政图 dashboard: functions the dash-leaflet GeoJSON layers call by name ({variable: "yzt.point"}).
   Points are drawn as canvas-friendly circle markers; the tooltip says when a layer is synthetic. */
window.yzt = Object.assign({}, window.yzt, {
  point: function (feature, latlng, context) {
    var h = (context && context.hideout) || {};
    var p = feature.properties || {};
    var m = L.circleMarker(latlng, {radius: h.radius || 5, color: h.color || "#333", weight: 1,
                                    fillColor: h.color || "#333", fillOpacity: 0.85});
    var label = (p.n || p.id || "") + (h.tag ? " · " + h.tag : "");
    m.bindTooltip(label);
    return m;
  },
  cluster: function (feature, latlng, index, context) {
    var h = (context && context.hideout) || {};
    var n = feature.properties.point_count;
    var size = n < 100 ? 30 : (n < 1000 ? 36 : 44);
    var icon = L.divIcon({
      html: '<div style="background:' + (h.color || "#555") + '"><span>' +
            feature.properties.point_count_abbreviated + '</span></div>',
      className: "yzt-cluster", iconSize: L.point(size, size)});
    return L.marker(latlng, {icon: icon, title: (h.tag || "") + " ×" + n});
  },
  adminStyle: function (feature, context) {
    var h = (context && context.hideout) || {};
    return {color: h.color || "#555", weight: h.weight || 1, fill: false, opacity: 0.9};
  }
});
