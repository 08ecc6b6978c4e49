// Draws the layers dashboard: the page's controls, one panel per layer (points written straight into the
// canvas's pixels, so 4 panels × 20,000 points redraw in a few milliseconds without WebGL), the colour
// scales (TensorBoard's PROJECTOR's own), the hover card with the example's thumbnail and metadata row.

export const PAD = 10; // CSS px between a layer's box and its panel's edge
export const SELECTED_RGB = [0xfa, 0x66, 0x66]; // the PROJECTOR's colour of searched and selected points
const BACKGROUND = 0xffffffff;
const MISSING_RGB = [0xbb, 0xbb, 0xbb]; // a point whose colour-by value is empty
const PATH_CSS = '#202124';
// The PROJECTOR's categorical palette: d3.schemeCategory10 taken every third colour (vz-projector-data-panel).
const CATEGORY10 = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f',
  '#bcbd22', '#17becf'];
const PALETTE = CATEGORY10.map((_, i) => CATEGORY10[(i * 3) % CATEGORY10.length]);
const GRADIENT = ['#ffffdd', '#1f2d86']; // the PROJECTOR's colours for numeric columns, lowest to highest
const MAX_CATEGORIES = 50; // more distinct values: a number column gets the gradient, a text column no colours

function element(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

function labelled(text, control) {
  const label = element('label', 'control', text);
  label.appendChild(control);
  return label;
}

/** The page's fixed parts; returns the elements the dashboard wires. */
export function buildPage(root) {
  const style = element('link');
  style.rel = 'stylesheet';
  style.href = './static/style.css';
  document.head.appendChild(style);
  const ui = {
    run: element('select', 'run'),
    layout: element('select', 'layout'),
    colorBy: element('select', 'color-by'),
    searchBy: element('select', 'search-by'),
    search: element('input', 'search'),
    searchMessage: element('span', 'search-message'),
    play: element('button', 'play', '▶'),
    slider: element('input', 'step-slider'),
    stepLabel: element('span', 'step-label'),
    status: element('div', 'status'),
    legend: element('div', 'legend'),
    selection: element('div', 'selection'),
    grid: element('div', 'panels'),
    tooltip: buildTooltip(),
  };
  ui.search.type = 'search';
  ui.search.placeholder = 'regex';
  ui.slider.type = 'range';
  ui.slider.min = 0;
  ui.slider.step = 1;
  ui.play.title = 'Play the steps';
  const bar = element('div', 'bar');
  bar.append(labelled('Run', ui.run), labelled('Layout', ui.layout), labelled('Color by', ui.colorBy),
      labelled('Search', ui.searchBy), ui.search, ui.searchMessage);
  const steps = element('div', 'bar steps');
  steps.append(ui.play, ui.slider, ui.stepLabel);
  root.append(bar, steps, ui.status, ui.legend, ui.selection, ui.grid, ui.tooltip.root);
  return ui;
}

export function setOptions(select, values, chosen, labels = {}) {
  select.replaceChildren(...values.map((v) => new Option(labels[v] || v, v, false, v === chosen)));
}

// ---- colours --------------------------------------------------------------------------------------------
function rgb(css) {
  return [1, 3, 5].map((k) => parseInt(css.slice(k, k + 2), 16));
}

function pack([r, g, b]) {
  return ((255 << 24) | (b << 16) | (g << 8) | r) >>> 0; // RGBA bytes in a little-endian Uint32
}

function columnStats(values) {
  const counts = {}; // an object, as the PROJECTOR's: integer-like values come first, in numeric order
  let numeric = true;
  let min = Infinity;
  let max = -Infinity;
  let distinct = 0;
  for (const v of values) {
    if (v === null) continue;
    if (distinct <= MAX_CATEGORIES) {
      if (!(v in counts)) distinct++;
      counts[v] = (counts[v] || 0) + 1;
    }
    if (isNaN(v)) {
      numeric = false;
    } else {
      min = Math.min(min, +v);
      max = Math.max(max, +v);
    }
  }
  return {counts, numeric, min, max, categorical: distinct <= MAX_CATEGORIES};
}

/** Columns the PROJECTOR offers in "Color by": numeric ones and those with at most 50 distinct values. */
export function colorColumns(table) {
  return table.columns.filter((c) => {
    const stats = columnStats(table.values[c]);
    return stats.categorical || stats.numeric;
  });
}

/** Each row's colour for `column`, as the PROJECTOR colours it, and the legend that explains it. */
export function colorScale(table, column) {
  const values = table.values[column];
  const stats = columnStats(values);
  const colors = new Uint32Array(values.length);
  const missing = pack(MISSING_RGB);
  if (stats.categorical) {
    const labels = Object.keys(stats.counts);
    const index = new Map(labels.map((label, i) => [label, pack(rgb(PALETTE[i % PALETTE.length]))]));
    values.forEach((v, i) => (colors[i] = v === null ? missing : index.get(String(v))));
    const legend = labels.map((label, i) => ({label, count: stats.counts[label], css: PALETTE[i % PALETTE.length]}));
    return {colors, legend};
  }
  const [low, high] = GRADIENT.map(rgb);
  const span = stats.max - stats.min || 1;
  values.forEach((v, i) => {
    const t = (v - stats.min) / span;
    colors[i] = v === null ? missing : pack(low.map((c, k) => Math.round(c + (high[k] - c) * t)));
  });
  return {colors, legend: [{label: `${stats.min} … ${stats.max}`, count: values.length, css: GRADIENT[1]}]};
}

/** The colours mixed three quarters with white: the points a search did not match. */
export function fade(colors) {
  return colors.map((c) => {
    const mix = (shift) => Math.round(((c >>> shift) & 255) * 0.25 + 255 * 0.75);
    return pack([mix(0), mix(8), mix(16)]);
  });
}

/** The colours and search matches of metadata tables, each computed once per table, column and query. */
export class Styles {
  constructor() {
    this.scales = new WeakMap(); // table -> column -> {colors, faded, legend}
    this.found = null;
  }

  /** {colors, faded, legend} of `column` (see `colorScale`). */
  colors(table, column) {
    if (!this.scales.has(table)) this.scales.set(table, new Map());
    const byColumn = this.scales.get(table);
    if (!byColumn.has(column)) {
      const scale = colorScale(table, column);
      byColumn.set(column, {...scale, faded: fade(scale.colors)});
    }
    return byColumn.get(column);
  }

  /** 1 for each row whose `column` matches `query`, a regular expression tested as the PROJECTOR's search box in
   * regex mode tests it (case-insensitive); null without a query or for an invalid one (then `invalid` is true). */
  matches(table, column, query) {
    if (this.found?.query !== `${column}\n${query}`) {
      let regex = null;
      try {
        regex = query ? new RegExp(query, 'i') : null;
      } catch (error) {
        regex = null; // SyntaxError: said under the search box, the points stay as they are
      }
      this.found = {query: `${column}\n${query}`, regex, invalid: Boolean(query) && !regex, tables: new WeakMap()};
    }
    const {regex, tables} = this.found;
    this.invalid = this.found.invalid;
    if (!regex) return null;
    if (!tables.has(table)) {
      tables.set(table, Uint8Array.from(table.values[column], (v) => (v !== null && regex.test(String(v)) ? 1 : 0)));
    }
    return tables.get(table);
  }
}

export function showLegend(container, legend) {
  container.replaceChildren(...legend.map(({label, count, css}) => {
    const item = element('span', 'item');
    const chip = element('span', 'chip');
    chip.style.background = css;
    item.append(chip, element('span', 'label', label), element('span', 'count', String(count)));
    return item;
  }));
}

/** Square size of a drawn point in CSS px: smaller as the points get denser. */
export function pointSize(rows) {
  return rows > 5000 ? 2 : rows > 1000 ? 3 : 4;
}

// ---- panels ---------------------------------------------------------------------------------------------
/** One layer's scatter plot: the box of all its steps fitted into the canvas (aspect kept, y up). */
export class Panel {
  constructor(grid, layer, onOpen) {
    this.layer = layer;
    this.element = element('div', 'panel');
    this.name = element('span', 'layer', layer);
    this.tensor = element('span', 'tensor');
    this.open = element('button', 'open', 'PROJECTOR ↗');
    this.open.addEventListener('click', () => onOpen(this));
    const head = element('div', 'panel-head');
    head.append(this.name, this.tensor, this.open);
    this.plot = element('div', 'plot');
    this.canvas = element('canvas');
    this.canvas.dataset.layer = layer;
    this.corner = element('span', 'separability');
    this.corner.title = 'k-NN separability of the classes in this layer at this step';
    this.note = element('div', 'note');
    this.plot.append(this.canvas, this.corner, this.note);
    this.element.append(head, this.plot);
    grid.appendChild(this.element);
    this.ctx = this.canvas.getContext('2d', {willReadFrequently: true}); // a CPU canvas: putImageData is a copy
    this.screen = new Float32Array(0);
    this.resize();
  }

  /** Matches the canvas's pixels to its CSS size (a square as wide as the panel). */
  resize() {
    const width = Math.max(100, Math.floor(this.plot.clientWidth));
    this.canvas.style.width = this.canvas.style.height = `${width}px`;
    this.dpr = window.devicePixelRatio || 1;
    this.size = width;
    this.canvas.width = this.canvas.height = Math.round(width * this.dpr);
    this.image = this.ctx.createImageData(this.canvas.width, this.canvas.height);
    this.pixels = new Uint32Array(this.image.data.buffer);
    this.setBox(this.box);
  }

  /** Names the shown tensor (title, PROJECTOR button), the layer's separability at the step, or why it is empty. */
  label(tensor, separability, note) {
    this.tensor.textContent = tensor || '';
    this.canvas.dataset.tensor = tensor || '';
    this.open.title = tensor ? `Open ${tensor} in the PROJECTOR` : '';
    this.corner.textContent = separability === null ? '' : `separability ${separability.toFixed(3)}`;
    this.note.textContent = tensor ? '' : note;
  }

  setBox(box = null) {
    this.box = box;
    if (!box) return;
    const [x0, x1, y0, y1] = box;
    const inner = this.size - 2 * PAD;
    this.scale = Math.min(inner / (x1 - x0 || 1), inner / (y1 - y0 || 1));
    this.ox = PAD + (inner - this.scale * (x1 - x0)) / 2;
    this.oy = PAD + (inner - this.scale * (y1 - y0)) / 2;
  }

  /** CSS px of the point (x, y) of the layout. */
  toScreen(x, y) {
    return [this.ox + this.scale * (x - this.box[0]), this.oy + this.scale * (this.box[3] - y)];
  }

  /** Draws one frame: `xy` positions, `colors` (packed RGBA), `emphasis` (1: a search match, drawn on top in
   * the selection colour; null: no search), the selected example's `path` and the `hovered` one. */
  draw({xy, colors, faded, emphasis, size, selected, path, hovered}) {
    this.pixels.fill(BACKGROUND);
    const n = xy && this.box ? xy.length / 2 : 0;
    if (this.screen.length !== 2 * n) this.screen = new Float32Array(2 * n);
    const {screen, ox, oy, scale} = this;
    const [x0, , , y1] = this.box || [];
    for (let i = 0; i < n; i++) {
      screen[2 * i] = ox + scale * (xy[2 * i] - x0);
      screen[2 * i + 1] = oy + scale * (y1 - xy[2 * i + 1]);
    }
    const side = Math.max(1, Math.round(size * this.dpr));
    if (emphasis) {
      this.squares(n, faded, null, emphasis, 0, side);
      this.squares(n, null, pack(SELECTED_RGB), emphasis, 1, side + 2);
    } else {
      this.squares(n, colors, null, null, 0, side);
    }
    this.ctx.putImageData(this.image, 0, 0);
    this.drawMarks(n, selected, path, hovered);
  }

  /** Writes a `side`-px square around each point (those whose `only[i]` equals `value`, if given), in `colors[i]`
   * or `color`, straight into the pixels: the pixel nearest the point's position, and up-left of it. */
  squares(n, colors, color, only, value, side) {
    const {pixels, screen, dpr} = this;
    const width = this.canvas.width;
    const height = this.canvas.height;
    const half = side >> 1;
    for (let i = 0; i < n; i++) {
      if (only !== null && only[i] !== value) continue;
      const c = colors === null ? color : colors[i];
      const left = Math.round(screen[2 * i] * dpr) - half;
      const top = Math.round(screen[2 * i + 1] * dpr) - half;
      const right = left + side < width ? left + side : width;
      const bottom = top + side < height ? top + side : height;
      for (let y = top < 0 ? 0 : top; y < bottom; y++) {
        for (let p = y * width + (left < 0 ? 0 : left), end = y * width + right; p < end; p++) pixels[p] = c;
      }
    }
  }

  drawMarks(n, selected, path, hovered) {
    const ctx = this.ctx;
    ctx.save();
    ctx.scale(this.dpr, this.dpr);
    ctx.strokeStyle = PATH_CSS;
    if (path && path.length > 1 && this.box) {
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      path.forEach(([x, y], k) => (k ? ctx.lineTo : ctx.moveTo).call(ctx, ...this.toScreen(x, y)));
      ctx.stroke();
      for (const [x, y] of path) {
        const [sx, sy] = this.toScreen(x, y);
        ctx.strokeRect(sx - 2, sy - 2, 4, 4);
      }
    }
    for (const [index, radius] of [[selected, 7], [hovered, 5]]) {
      if (index === null || index < 0 || index >= n) continue;
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.arc(this.screen[2 * index], this.screen[2 * index + 1], radius, 0, 2 * Math.PI);
      ctx.stroke();
    }
    ctx.restore();
  }

  /** The drawn point nearest to CSS px (x, y) of the canvas within a few pixels, or -1. */
  pick(x, y) {
    let best = -1;
    let bestDistance = 36; // (6 px)²
    for (let i = 0; i < this.screen.length / 2; i++) {
      const dx = this.screen[2 * i] - x;
      const dy = this.screen[2 * i + 1] - y;
      const d = dx * dx + dy * dy;
      if (d <= bestDistance) {
        best = i;
        bestDistance = d;
      }
    }
    return best;
  }

  remove() {
    this.element.remove();
  }
}

// ---- hover card -----------------------------------------------------------------------------------------
function buildTooltip() {
  const root = element('div', 'tooltip');
  const canvas = element('canvas', 'thumbnail');
  const title = element('div', 'row-title');
  const table = element('table', 'row');
  root.append(canvas, title, table);
  root.hidden = true;
  return {root, canvas, title, table};
}

/** Shows example `index` near CSS px (x, y) of the page: its sprite cell at full resolution and its row. */
export function showTooltip(tooltip, {x, y, index, sprite, table}) {
  const {root, canvas, title} = tooltip;
  canvas.hidden = !sprite || !sprite.cell;
  if (!canvas.hidden) {
    const [w, h] = sprite.cell;
    const perRow = Math.floor(sprite.image.naturalWidth / w);
    canvas.width = w;
    canvas.height = h;
    canvas.dataset.index = index;
    const ctx = canvas.getContext('2d');
    ctx.clearRect(0, 0, w, h);
    ctx.drawImage(sprite.image, (index % perRow) * w, Math.floor(index / perRow) * h, w, h, 0, 0, w, h);
  }
  title.textContent = `row ${index}`;
  tooltip.table.replaceChildren(...(table ? table.columns : []).map((c) => {
    const tr = element('tr');
    tr.append(element('th', '', c), element('td', '', String(table.values[c][index])));
    return tr;
  }));
  root.hidden = false;
  const margin = 16;
  root.style.left = `${Math.min(x + margin, window.innerWidth - root.offsetWidth - 4)}px`;
  root.style.top = `${Math.min(y + margin, window.innerHeight - root.offsetHeight - 4)}px`;
}

export function hideTooltip(tooltip) {
  tooltip.root.hidden = true;
}
