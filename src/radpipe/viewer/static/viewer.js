"use strict";
// radpipe viewer: three linked panes over the LPS-canonical volume (k slice S, j row P, i column L),
// rendered on the server; zoom, pan and the ruler act on the picture here, a 3-D pane of the masks.
const token = new URLSearchParams(location.search).get("token") || "";
const q = (path, params) => `${path}?${new URLSearchParams({ token, ...params })}`;
const planes = ["axial", "coronal", "sagittal"];
const letters = { axial: ["A", "P", "R", "L"], coronal: ["S", "I", "R", "L"], sagittal: ["S", "I", "A", "P"] };
const state = {
  info: null, point: [0, 0, 0], center: 40, width: 400, labels: new Set(), serial: {},
  view: {}, active: "axial", rulerMode: false, ruler: null, show3d: false, azimuth: 0, elevation: 0,
};
let windowDrag = null, pointer = null, rotate = null;

const byId = (id) => document.getElementById(id);
function sliceIndex(plane) { return state.point[planes.indexOf(plane)]; }

function renderParams(plane) {
  const params = { plane, index: sliceIndex(plane), center: state.center, width: state.width };
  if (state.labels.size) {
    params.labels = [...state.labels].join(",");
    params.label_opacity = byId("label-opacity").value;
  }
  if (state.info.heatmap && byId("heatmap").checked) {
    params.heatmap = "1";
    params.colormap = byId("colormap").value;
    params.heat_opacity = byId("heat-opacity").value;
    const threshold = Number(byId("threshold").value);
    if (threshold > 0) params.threshold = threshold;
  }
  return params;
}

function refresh(plane) {
  const image = byId(`pane-${plane}`);
  const serial = (state.serial[plane] || 0) + 1;
  state.serial[plane] = serial;
  const next = new Image();
  next.onload = () => { if (state.serial[plane] === serial) { image.src = next.src; image.dataset.index = sliceIndex(plane); drawOverlay(plane); } };
  next.src = q("api/slice.png", renderParams(plane));
  byId(`slider-${plane}`).value = sliceIndex(plane);
  byId(`index-${plane}`).textContent = `${plane} ${sliceIndex(plane)} / ${state.info.panes[plane].count - 1}`;
}

function refreshAll() {
  planes.forEach(refresh);
  byId("window-text").textContent = `C ${Math.round(state.center)} / W ${Math.round(state.width)}`;
  if (state.show3d) refresh3d();
}

// pane pixel (row, column of the slice) <-> volume index
function toVolume(plane, row, column) {
  const s = state.info.panes.axial.count;
  const p = [...state.point];
  if (plane === "axial") { p[1] = row; p[2] = column; }
  if (plane === "coronal") { p[0] = s - 1 - row; p[2] = column; }
  if (plane === "sagittal") { p[0] = s - 1 - row; p[1] = column; }
  return p;
}
function toPane(plane) {
  const s = state.info.panes.axial.count, [k, j, i] = state.point;
  if (plane === "axial") return [j, i];
  if (plane === "coronal") return [s - 1 - k, i];
  return [s - 1 - k, j];
}

// (row, column) in slice pixels under the mouse, fractional; the box includes zoom and pan
function eventPosition(plane, event) {
  const image = byId(`pane-${plane}`), pane = state.info.panes[plane];
  const box = image.getBoundingClientRect();
  return [(event.clientY - box.top) / box.height * pane.rows, (event.clientX - box.left) / box.width * pane.columns];
}
function eventPixel(plane, event) {
  const pane = state.info.panes[plane], [row, column] = eventPosition(plane, event);
  return [Math.min(Math.max(Math.floor(row), 0), pane.rows - 1), Math.min(Math.max(Math.floor(column), 0), pane.columns - 1)];
}

function drawOverlay(plane) {
  const image = byId(`pane-${plane}`), canvas = image.nextElementSibling, pane = state.info.panes[plane];
  canvas.width = image.offsetWidth; canvas.height = image.offsetHeight;
  const context = canvas.getContext("2d"), [row, column] = toPane(plane);
  const sy = canvas.height / pane.rows, sx = canvas.width / pane.columns, scale = state.view[plane].scale;
  const y = (row + 0.5) * sy, x = (column + 0.5) * sx;
  context.strokeStyle = "rgba(80, 200, 255, 0.7)"; context.lineWidth = 1 / scale;
  context.beginPath(); context.moveTo(0, y); context.lineTo(canvas.width, y); context.moveTo(x, 0); context.lineTo(x, canvas.height); context.stroke();
  const ruler = state.ruler;
  if (ruler && ruler.plane === plane) {
    const [ay, ax] = [ruler.a[0] * sy, ruler.a[1] * sx], [by, bx] = [ruler.b[0] * sy, ruler.b[1] * sx];
    context.strokeStyle = "#ff0"; context.fillStyle = "#ff0"; context.lineWidth = 2 / scale;
    context.beginPath(); context.moveTo(ax, ay); context.lineTo(bx, by); context.stroke();
    context.font = `${13 / scale}px sans-serif`;
    context.fillText(`${rulerLength(ruler).toFixed(1)} mm`, bx + 6 / scale, by - 6 / scale);
  }
}

function rulerLength(ruler) {
  const pane = state.info.panes[ruler.plane];
  return Math.hypot((ruler.b[0] - ruler.a[0]) * pane.row_mm, (ruler.b[1] - ruler.a[1]) * pane.column_mm);
}
function showRuler() {
  const text = state.ruler ? `ruler ${rulerLength(state.ruler).toFixed(1)} mm (${state.ruler.plane})` : "";
  byId("measure").textContent = text;
  document.body.dataset.rulerMm = state.ruler ? rulerLength(state.ruler).toFixed(2) : "";
}

let valueSerial = 0;
async function showValue(point) {
  const [k, j, i] = point, serial = ++valueSerial;
  const answer = await fetch(q("api/value", { k, j, i }));
  if (!answer.ok || serial !== valueSerial) return;
  const value = await answer.json();
  const cursor = byId("cursor");
  const label = value.label_name ? `  label ${value.label_name}` : value.label ? `  label ${value.label}` : "";
  cursor.textContent = `(${value.position_mm.join(", ")}) mm  value ${value.value}${value.units ? " " + value.units : ""}${label}`;
  cursor.dataset.label = value.label_name || "";
  cursor.dataset.value = value.value;
  cursor.dataset.voxel = point.join(",");
}

function applyView(plane) {
  const view = state.view[plane], stage = byId(`pane-${plane}`).parentElement;
  stage.style.transform = `translate(${view.x}px, ${view.y}px) scale(${view.scale})`;
  stage.parentElement.dataset.scale = view.scale.toFixed(3);
  drawOverlay(plane);
}

// zoom about (x, y) in frame pixels (the frame's centre when not given)
function zoom(plane, factor, x, y) {
  const view = state.view[plane], frame = byId(`pane-${plane}`).parentElement.parentElement;
  if (x === undefined) { x = frame.clientWidth / 2; y = frame.clientHeight / 2; }
  const scale = Math.min(Math.max(view.scale * factor, 1), 16), applied = scale / view.scale;
  view.x = x - (x - view.x) * applied; view.y = y - (y - view.y) * applied; view.scale = scale;
  if (scale === 1) { view.x = 0; view.y = 0; }
  applyView(plane);
}

function setupPanes() {
  planes.forEach((plane, axis) => {
    state.view[plane] = { scale: 1, x: 0, y: 0 };
    const image = byId(`pane-${plane}`), slider = byId(`slider-${plane}`);
    const frame = image.parentElement.parentElement;
    const [top, bottom, left, right] = letters[plane];
    frame.querySelector(".top").textContent = top; frame.querySelector(".bottom").textContent = bottom;
    frame.querySelector(".left").textContent = left; frame.querySelector(".right").textContent = right;
    slider.max = state.info.panes[plane].count - 1;
    slider.oninput = () => { state.point[axis] = Number(slider.value); state.active = plane; refresh(plane); };
    // over a picture the keys are the viewer's, not the last control's
    image.onmouseenter = () => { state.active = plane; if (document.activeElement !== document.body) document.activeElement.blur(); };
    image.onmousemove = (event) => {
      if (!windowDrag && !pointer) { const [row, column] = eventPixel(plane, event); showValue(toVolume(plane, row, column)); }
    };
    image.onwheel = (event) => {
      event.preventDefault(); state.active = plane;
      if (event.ctrlKey) {
        const box = frame.getBoundingClientRect();
        zoom(plane, event.deltaY < 0 ? 1.25 : 0.8, event.clientX - box.left, event.clientY - box.top);
      } else step(plane, event.deltaY > 0 ? 1 : -1);
    };
    image.oncontextmenu = (event) => event.preventDefault();
    image.onmousedown = (event) => {
      state.active = plane; event.preventDefault();
      if (event.button === 2 || event.shiftKey) {
        windowDrag = { x: event.clientX, y: event.clientY, center: state.center, width: state.width };
        return;
      }
      if (event.button !== 0) return;
      const view = state.view[plane];
      pointer = { plane, x: event.clientX, y: event.clientY, moved: false, viewX: view.x, viewY: view.y, ruler: state.rulerMode };
      if (state.rulerMode) { const at = eventPosition(plane, event); state.ruler = { plane, a: at, b: at }; }
    };
  });
  let timer = null;
  window.onmousemove = (event) => {
    if (windowDrag) {
      state.width = Math.max(1, windowDrag.width + (event.clientX - windowDrag.x) * 4);
      state.center = windowDrag.center - (event.clientY - windowDrag.y) * 2;
      byId("preset").value = "custom";
      clearTimeout(timer); timer = setTimeout(refreshAll, 30);
      return;
    }
    if (rotate) { dragRotate(event); return; }
    if (!pointer) return;
    const dx = event.clientX - pointer.x, dy = event.clientY - pointer.y;
    if (Math.abs(dx) + Math.abs(dy) > 3) pointer.moved = true;
    if (pointer.ruler) {
      state.ruler.b = eventPosition(pointer.plane, event); drawOverlay(pointer.plane); showRuler();
    } else if (pointer.moved) {
      const view = state.view[pointer.plane];
      view.x = pointer.viewX + dx; view.y = pointer.viewY + dy; applyView(pointer.plane);
    }
  };
  window.onmouseup = (event) => {
    if (pointer && !pointer.moved && !pointer.ruler) {
      const [row, column] = eventPixel(pointer.plane, event);
      state.point = toVolume(pointer.plane, row, column);
      refreshAll(); showValue(state.point);
    }
    if (pointer && pointer.ruler) { showRuler(); drawOverlay(pointer.plane); }
    windowDrag = null; pointer = null; rotate = null;
  };
  document.onkeydown = keyboard;
  window.onresize = () => { fitPanes(); planes.forEach(drawOverlay); };
}

// every pane fits the window's height: one row of three, or two rows with the 3-D pane
function fitPanes() {
  const rows = state.show3d ? 2 : 1, top = byId("panes").getBoundingClientRect().top;
  const height = Math.max(120, (window.innerHeight - top - 8) / rows - 48);
  for (const plane of planes) {
    const pane = state.info.panes[plane];
    byId(`pane-${plane}`).parentElement.parentElement.style.maxWidth = `${Math.floor(height * pane.width / pane.height)}px`;
  }
  byId("pane-3d").parentElement.style.maxWidth = `${Math.floor(height)}px`;
}

function keyboard(event) {
  if (!state.info || !state.info.panes || ["INPUT", "SELECT", "TEXTAREA"].includes(event.target.tagName)) return;
  if (event.ctrlKey || event.metaKey || event.altKey) return; // the browser's own shortcuts
  const plane = state.active, axis = planes.indexOf(plane), count = state.info.panes[plane].count;
  const actions = {
    ArrowUp: () => step(plane, 1), ArrowRight: () => step(plane, 1),
    ArrowDown: () => step(plane, -1), ArrowLeft: () => step(plane, -1),
    PageDown: () => step(plane, 10), PageUp: () => step(plane, -10),
    Home: () => step(plane, -state.point[axis]), End: () => step(plane, count - 1 - state.point[axis]),
    "+": () => zoom(plane, 1.25), "=": () => zoom(plane, 1.25), "-": () => zoom(plane, 0.8),
    r: reset, m: toggleRuler, 3: toggle3d,
  };
  const action = actions[event.key];
  if (action) { action(); event.preventDefault(); }
}

function step(plane, delta) {
  const axis = planes.indexOf(plane), count = state.info.panes[plane].count;
  state.point[axis] = Math.min(Math.max(state.point[axis] + delta, 0), count - 1);
  refreshAll();
}

function reset() {
  planes.forEach((plane) => { state.view[plane] = { scale: 1, x: 0, y: 0 }; applyView(plane); });
  [state.center, state.width] = state.info.window;
  byId("preset").value = "";
  state.ruler = null; showRuler(); state.azimuth = 0; state.elevation = 0;
  refreshAll();
}

function toggleRuler() {
  state.rulerMode = !state.rulerMode;
  byId("ruler").classList.toggle("on", state.rulerMode);
  document.querySelectorAll(".frame").forEach((frame) => frame.classList.toggle("ruler", state.rulerMode));
}

// the 3-D pane: one request in flight, the latest view requested when it returns
let surfaceBusy = false, surfaceAgain = false;
function refresh3d() {
  if (surfaceBusy) { surfaceAgain = true; return; }
  surfaceBusy = true; surfaceAgain = false;
  const image = byId("pane-3d"), next = new Image();
  const params = { azimuth: state.azimuth.toFixed(1), elevation: state.elevation.toFixed(1), labels: [...state.labels].join(","), size: 192 };
  next.onload = next.onerror = () => {
    image.src = next.src; image.dataset.azimuth = params.azimuth; surfaceBusy = false;
    if (surfaceAgain) refresh3d();
  };
  next.src = q("api/surface.png", params);
  byId("index-3d").textContent = `3-D masks  azimuth ${Math.round(state.azimuth)}°  elevation ${Math.round(state.elevation)}°  (drag to rotate)`;
}
function dragRotate(event) {
  state.azimuth = (rotate.azimuth + (event.clientX - rotate.x) * 0.5) % 360;
  state.elevation = Math.min(Math.max(rotate.elevation - (event.clientY - rotate.y) * 0.5, -90), 90);
  refresh3d();
}
function toggle3d() {
  if (!state.info.labels.length) return;
  state.show3d = !state.show3d;
  byId("pane3d-box").hidden = !state.show3d;
  byId("panes").classList.toggle("with-3d", state.show3d);
  byId("toggle-3d").classList.toggle("on", state.show3d);
  fitPanes(); planes.forEach(drawOverlay);
  if (state.show3d) refresh3d();
}

function setupControls() {
  const preset = byId("preset");
  preset.length = 1;
  for (const name of Object.keys(state.info.presets)) preset.add(new Option(name, name));
  preset.add(new Option("custom", "custom"));
  preset.onchange = () => {
    if (preset.value === "custom") return;
    const chosen = preset.value ? state.info.presets[preset.value] : state.info.window;
    [state.center, state.width] = chosen; refreshAll();
  };
  const controls = byId("label-controls");
  controls.innerHTML = ""; state.labels.clear();
  for (const label of state.info.labels) {
    const box = document.createElement("label"), check = document.createElement("input");
    check.type = "checkbox"; check.id = `label-${label.value}`; check.checked = true; state.labels.add(label.value);
    check.onchange = () => { check.checked ? state.labels.add(label.value) : state.labels.delete(label.value); refreshAll(); };
    const swatch = document.createElement("span"); swatch.className = "swatch"; swatch.style.background = `rgb(${label.colour.join(",")})`;
    box.append(check, swatch, label.name); controls.append(box);
  }
  byId("label-opacity-box").hidden = !state.info.labels.length;
  byId("toggle-3d").hidden = !state.info.labels.length;
  byId("heat-controls").hidden = !state.info.heatmap;
  for (const id of ["label-opacity", "heatmap", "colormap", "heat-opacity", "threshold"]) byId(id).onchange = refreshAll;
  byId("save").onclick = () => {
    const [k, j, i] = state.point;
    const link = document.createElement("a");
    link.href = q("api/snapshot.png", { ...renderParams("axial"), k, j, i }); link.download = "radpipe-view.png"; link.click();
  };
  byId("ruler").onclick = toggleRuler;
  byId("reset").onclick = reset;
  byId("toggle-3d").onclick = toggle3d;
  const surface = byId("pane-3d");
  surface.onmousedown = (event) => { event.preventDefault(); rotate = { x: event.clientX, y: event.clientY, azimuth: state.azimuth, elevation: state.elevation }; };
}

function table(element, rows) {
  element.innerHTML = rows.map((cells) => `<tr>${cells.map((c) => `<td>${c ?? ""}</td>`).join("")}</tr>`).join("");
}

function setupSide() {
  table(byId("meta"), Object.entries(state.info.meta).map(([k, v]) => [k, Array.isArray(v) ? v.join(" × ") : v]));
  const summary = state.info.summary || {};
  table(byId("summary"), Object.entries(summary).map(([k, v]) => [k.replaceAll("_", " "), v]));
  const lesions = byId("lesions");
  lesions.innerHTML = state.info.lesions.length ? "<tr><th>lesion</th><th>mask</th><th>mL</th><th>mm</th></tr>" : "";
  for (const lesion of state.info.lesions) {
    const row = lesions.insertRow(); row.className = "lesion"; row.dataset.index = lesion.index.join(",");
    for (const cell of [lesion.id, lesion.source, lesion.volume_ml, lesion.diameter_mm]) row.insertCell().textContent = cell;
    row.onclick = () => { state.point = [...lesion.index]; refreshAll(); showValue(state.point); };
  }
}

async function load(info) {
  state.info = info;
  if (!info.panes) return;
  state.point = planes.map((plane) => Math.floor(info.panes[plane].count / 2));
  [state.center, state.width] = info.window;
  state.ruler = null; state.show3d = false; state.azimuth = 0; state.elevation = 0;
  byId("pane3d-box").hidden = true; byId("panes").classList.remove("with-3d");
  byId("toggle-3d").classList.remove("on"); byId("cursor").textContent = "move over an image";
  setupPanes(); setupControls(); setupSide(); fitPanes(); refreshAll(); planes.forEach(applyView); showRuler();
  document.body.dataset.ready = "1";
}

async function start() {
  const info = await (await fetch(q("api/info", {}))).json();
  if (info.patients.length) {
    const box = byId("patient-box"), picker = byId("patient");
    box.hidden = false;
    picker.add(new Option("choose a patient", ""));
    for (const patient of info.patients) picker.add(new Option(`${patient.patient} (${patient.series} series)`, patient.patient));
    let opening = 0; // of two quick choices, only the later one is shown
    picker.onchange = async () => {
      if (!picker.value) return;
      const mine = ++opening, answer = await fetch(q("api/open", { patient: picker.value }));
      if (mine !== opening) return;
      if (!answer.ok) { byId("cursor").textContent = await answer.text(); return; }
      load(await answer.json());
    };
  }
  load(info);
}
start();
