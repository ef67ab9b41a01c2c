"use strict";
// radpipe viewer: three linked panes over the LPS-canonical volume (k slice S, j row P, i column L).
const token = new URLSearchParams(location.search).get("token") || "";
const q = (path, params) => `${path}?${new URLSearchParams({ token, ...params })}`;
const planes = ["axial", "coronal", "sagittal"];
const letters = { axial: ["A", "P", "R", "L"], coronal: ["S", "I", "R", "L"], sagittal: ["S", "I", "A", "P"] };
const state = { info: null, point: [0, 0, 0], center: 40, width: 400, labels: new Set(), serial: {} };

function sliceIndex(plane) { return state.point[planes.indexOf(plane)]; }

function renderParams(plane) {
  const params = { plane, index: sliceIndex(plane), center: state.center, width: state.width };
  if (state.labels.size) {
    params.labels = [...state.labels].join(",");
    params.label_opacity = document.getElementById("label-opacity").value;
  }
  if (state.info.heatmap && document.getElementById("heatmap").checked) {
    params.heatmap = "1";
    params.colormap = document.getElementById("colormap").value;
    params.heat_opacity = document.getElementById("heat-opacity").value;
    const threshold = Number(document.getElementById("threshold").value);
    if (threshold > 0) params.threshold = threshold;
  }
  return params;
}

function refresh(plane) {
  const image = document.getElementById(`pane-${plane}`);
  const serial = (state.serial[plane] || 0) + 1;
  state.serial[plane] = serial;
  const next = new Image();
  next.onload = () => { if (state.serial[plane] === serial) { image.src = next.src; image.dataset.index = sliceIndex(plane); drawCross(plane); } };
  next.src = q("api/slice.png", renderParams(plane));
  document.getElementById(`slider-${plane}`).value = sliceIndex(plane);
  document.getElementById(`index-${plane}`).textContent = `${plane} ${sliceIndex(plane)} / ${state.info.panes[plane].count - 1}`;
}

function refreshAll() { planes.forEach(refresh); document.getElementById("window-text").textContent = `C ${Math.round(state.center)} / W ${Math.round(state.width)}`; }

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

function eventPixel(plane, event) {
  const image = event.target, pane = state.info.panes[plane];
  const box = image.getBoundingClientRect();
  const row = Math.floor((event.clientY - box.top) / box.height * pane.rows);
  const column = Math.floor((event.clientX - box.left) / box.width * pane.columns);
  return [Math.min(Math.max(row, 0), pane.rows - 1), Math.min(Math.max(column, 0), pane.columns - 1)];
}

function drawCross(plane) {
  const image = document.getElementById(`pane-${plane}`), canvas = image.nextElementSibling, pane = state.info.panes[plane];
  canvas.width = image.clientWidth; canvas.height = image.clientHeight;
  const context = canvas.getContext("2d"), [row, column] = toPane(plane);
  const y = (row + 0.5) / pane.rows * canvas.height, x = (column + 0.5) / pane.columns * canvas.width;
  context.strokeStyle = "rgba(80, 200, 255, 0.7)"; context.lineWidth = 1;
  context.beginPath(); context.moveTo(0, y); context.lineTo(canvas.width, y); context.moveTo(x, 0); context.lineTo(x, canvas.height); context.stroke();
}

async function showValue(point) {
  const [k, j, i] = point;
  const answer = await fetch(q("api/value", { k, j, i }));
  if (!answer.ok) return;
  const value = await answer.json();
  document.getElementById("cursor").textContent =
    `(${value.position_mm.join(", ")}) mm  value ${value.value}${value.units ? " " + value.units : ""}`;
}

function setupPanes() {
  planes.forEach((plane, axis) => {
    const image = document.getElementById(`pane-${plane}`), slider = document.getElementById(`slider-${plane}`);
    const frame = image.parentElement;
    const [top, bottom, left, right] = letters[plane];
    frame.querySelector(".top").textContent = top; frame.querySelector(".bottom").textContent = bottom;
    frame.querySelector(".left").textContent = left; frame.querySelector(".right").textContent = right;
    slider.max = state.info.panes[plane].count - 1;
    slider.oninput = () => { state.point[axis] = Number(slider.value); refresh(plane); };
    image.tabIndex = 0;
    image.onclick = (event) => {
      const [row, column] = eventPixel(plane, event);
      state.point = toVolume(plane, row, column);
      refreshAll(); showValue(state.point);
    };
    image.onmousemove = (event) => { if (!drag) { const [row, column] = eventPixel(plane, event); showValue(toVolume(plane, row, column)); } };
    image.onwheel = (event) => { event.preventDefault(); step(plane, event.deltaY > 0 ? 1 : -1); };
    image.onkeydown = (event) => {
      if (event.key === "ArrowUp" || event.key === "ArrowRight") { step(plane, 1); event.preventDefault(); }
      if (event.key === "ArrowDown" || event.key === "ArrowLeft") { step(plane, -1); event.preventDefault(); }
    };
    image.oncontextmenu = (event) => event.preventDefault();
    image.onmousedown = (event) => {
      if (event.button === 2 || event.shiftKey) { drag = { x: event.clientX, y: event.clientY, center: state.center, width: state.width }; event.preventDefault(); }
    };
  });
  let timer = null;
  window.onmousemove = (event) => {
    if (!drag) return;
    state.width = Math.max(1, drag.width + (event.clientX - drag.x) * 4);
    state.center = drag.center - (event.clientY - drag.y) * 2;
    clearTimeout(timer); timer = setTimeout(refreshAll, 30);
  };
  window.onmouseup = () => { drag = null; };
}
let drag = null;

function step(plane, delta) {
  const axis = planes.indexOf(plane), count = state.info.panes[plane].count;
  state.point[axis] = Math.min(Math.max(state.point[axis] + delta, 0), count - 1);
  refreshAll();
}

function setupControls() {
  const preset = document.getElementById("preset");
  preset.length = 1;
  for (const name of Object.keys(state.info.presets)) preset.add(new Option(name, name));
  preset.onchange = () => {
    const chosen = preset.value ? state.info.presets[preset.value] : state.info.window;
    [state.center, state.width] = chosen; refreshAll();
  };
  const controls = document.getElementById("label-controls"), legend = document.getElementById("legend");
  controls.innerHTML = ""; legend.innerHTML = ""; state.labels.clear();
  for (const label of state.info.labels) {
    const box = document.createElement("label"), check = document.createElement("input");
    check.type = "checkbox"; check.id = `label-${label.value}`; check.checked = true; state.labels.add(label.value);
    check.onchange = () => { check.checked ? state.labels.add(label.value) : state.labels.delete(label.value); refreshAll(); };
    const swatch = document.createElement("span"); swatch.className = "swatch"; swatch.style.background = `rgb(${label.colour.join(",")})`;
    box.append(check, swatch, label.name); controls.append(box);
    legend.append(swatch.cloneNode(), `${label.name}  `);
  }
  document.getElementById("label-opacity-box").hidden = !state.info.labels.length;
  document.getElementById("heat-controls").hidden = !state.info.heatmap;
  for (const id of ["label-opacity", "heatmap", "colormap", "heat-opacity", "threshold"]) document.getElementById(id).onchange = refreshAll;
  document.getElementById("save").onclick = () => {
    const [k, j, i] = state.point;
    const link = document.createElement("a");
    link.href = q("api/snapshot.png", { ...renderParams("axial"), k, j, i }); link.download = "radpipe-view.png"; link.click();
  };
}

function table(element, rows) {
  element.innerHTML = rows.map((cells) => `<tr>${cells.map((c) => `<td>${c ?? ""}</td>`).join("")}</tr>`).join("");
}

function setupSide() {
  table(document.getElementById("meta"), Object.entries(state.info.meta).map(([k, v]) => [k, Array.isArray(v) ? v.join(" × ") : v]));
  const summary = state.info.summary || {};
  table(document.getElementById("summary"), Object.entries(summary).map(([k, v]) => [k.replaceAll("_", " "), v]));
  const lesions = document.getElementById("lesions");
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
  setupPanes(); setupControls(); setupSide(); refreshAll();
  document.body.dataset.ready = "1";
}

async function start() {
  const info = await (await fetch(q("api/info", {}))).json();
  if (info.patients.length) {
    const box = document.getElementById("patient-box"), picker = document.getElementById("patient");
    box.hidden = false;
    picker.add(new Option("choose a patient", ""));
    for (const patient of info.patients) picker.add(new Option(`${patient.patient} (${patient.series} series)`, patient.patient));
    picker.onchange = async () => { if (picker.value) load(await (await fetch(q("api/open", { patient: picker.value }))).json()); };
  }
  load(info);
}
start();
