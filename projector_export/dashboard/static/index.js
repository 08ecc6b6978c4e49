// The layers dashboard's entry point (TensorBoard imports it and calls render()): wires the controls, the
// panels and the step animation to the run's data. model.js fetches, views.js draws.

import {RunData, fetchRunInfo, fetchRuns} from './model.js';
import {openInProjector} from './projector_link.js';
import * as views from './views.js';

const ANIMATION_MS = 700; // one step to the next
const HOLD_MS = 500; // a step stays still this long while playing
const POLL_MS = 5000; // how often the run is checked for new steps and recomputed layouts
const LAYOUT_NAMES = {pca: 'PCA', tsne: 't-SNE', umap: 'UMAP'};

export async function render() {
  await new Dashboard(views.buildPage(document.body)).start();
}

class Dashboard {
  constructor(ui) {
    this.ui = ui;
    this.data = null;
    this.kind = null;
    this.panels = [];
    this.steps = [];
    this.stepIndex = 0;
    this.playing = false;
    this.selected = null;
    this.hovered = null;
    this.cache = new Map();
    this.scales = new Map();
    ui.run.addEventListener('change', () => this.showRun(ui.run.value));
    ui.layout.addEventListener('change', () => this.showKind(ui.layout.value));
    ui.colorBy.addEventListener('change', () => this.recolor());
    ui.searchBy.addEventListener('change', () => this.recolor());
    ui.search.addEventListener('input', () => this.recolor());
    ui.slider.addEventListener('input', () => {
      this.pause();
      this.goTo(Number(ui.slider.value));
    });
    ui.play.addEventListener('click', () => (this.playing ? this.pause() : this.play()));
    new ResizeObserver(() => this.resize()).observe(ui.grid);
  }

  setState(state, message = '') {
    document.body.dataset.state = state;
    this.ui.status.textContent = message;
  }

  async start() {
    try {
      const runs = await fetchRuns();
      if (!runs.length) {
        return this.setState('empty', 'No run has layer snapshots yet.');
      }
      const first = runs.find((r) => r.layouts) || runs[0];
      views.setOptions(this.ui.run, runs.map((r) => r.run), first.run);
      await this.showRun(first.run);
    } catch (error) {
      this.setState('error', String(error.message || error));
    }
    setInterval(() => this.poll(), POLL_MS);
  }

  async showRun(run) {
    this.pause();
    this.selected = this.hovered = null;
    this.cache = new Map();
    this.setState('loading', `Loading ${run}…`);
    try {
      await this.load(await fetchRunInfo(run), false);
    } catch (error) {
      this.setState('error', String(error.message || error));
    }
  }

  /** Shows the run `info` describes; `keepStep`: stay on the step shown (a refresh of the same run). */
  async load(info, keepStep) {
    this.info = info;
    if (info.hint) {
      this.data = null;
      this.setPanels([]);
      return this.setState('hint', info.hint);
    }
    const data = new RunData(info, this.cache);
    await data.load((done, total) => this.setState('loading', `Loading layouts: ${done} of ${total} tensors`));
    const kinds = data.kinds();
    const kind = kinds.includes(this.kind) ? this.kind : kinds.find((k) => k !== 'pca') || kinds[0];
    await data.loadKind(kind, (done, total) => this.setState('loading', `Loading ${kind}: ${done} of ${total}`));
    const step = keepStep ? this.steps[this.stepIndex] : null;
    this.data = data;
    this.kind = kind;
    this.scales = new Map();
    views.setOptions(this.ui.layout, kinds, kind, LAYOUT_NAMES);
    this.setPanels(data.layers);
    this.setSteps(step);
    this.setColumns();
    this.setState('ready', [info.pending, ...info.problems].filter(Boolean).join(' '));
    document.body.dataset.generation = info.generation;
    this.goTo(this.stepIndex, false);
  }

  async showKind(kind) {
    this.setState('loading', `Loading ${kind}…`);
    await this.data.loadKind(kind, (done, total) => this.setState('loading', `Loading ${kind}: ${done} of ${total}`));
    this.kind = kind;
    this.panels.forEach((panel) => (panel.shown = null));
    this.setSteps(this.steps[this.stepIndex]);
    this.setState('ready');
    this.goTo(this.stepIndex, false);
  }

  setPanels(layers) {
    this.panels.forEach((panel) => panel.remove());
    this.panels = layers.map((layer) => {
      const panel = new views.Panel(this.ui.grid, layer.name, (p) => openInProjector(this.data.run, p.tensorName));
      panel.source = layer;
      panel.shown = null;
      panel.canvas.addEventListener('mousemove', (event) => this.hover(panel, event));
      panel.canvas.addEventListener('mouseleave', () => this.hover(null, null));
      panel.canvas.addEventListener('click', (event) => this.select(panel.pick(event.offsetX, event.offsetY)));
      return panel;
    });
  }

  /** The steps at which some layer has the shown layout; stays on `step` when it is one, else the last. */
  setSteps(step) {
    const data = this.data;
    this.steps = data.steps.filter((s) => data.layers.some((l) => data.xy(l.tensors.get(s), this.kind)));
    const index = this.steps.indexOf(step);
    this.stepIndex = index >= 0 ? index : this.steps.length - 1;
    this.ui.slider.max = Math.max(0, this.steps.length - 1);
    this.panels.forEach((panel) => panel.setBox(data.box(panel.source, this.kind)));
  }

  /** Colour-by and search-by menus from the metadata's columns; colour by the layouts' class column. */
  setColumns() {
    const table = this.table();
    if (!table) return;
    const colors = views.colorColumns(table);
    const previous = this.ui.colorBy.value;
    const wanted = [previous, this.data.colorBy(), 'class', 'label'].find((c) => colors.includes(c)) || colors[0];
    views.setOptions(this.ui.colorBy, colors, wanted);
    const search = this.ui.searchBy.value;
    views.setOptions(this.ui.searchBy, table.columns, table.columns.includes(search) ? search : wanted);
  }

  /** The metadata of the first panel's shown tensor (every layer's snapshot at one step shares it). */
  table() {
    const panel = this.panels.find((p) => this.data.table(p.tensorName || this.firstTensor(p)));
    return panel ? this.data.table(panel.tensorName || this.firstTensor(panel)) : null;
  }

  firstTensor(panel) {
    return [...panel.source.tensors.values()][0];
  }

  // ---- steps and animation --------------------------------------------------------------------------------
  play() {
    if (this.steps.length < 2) return;
    this.playing = true;
    this.ui.play.textContent = '❚❚';
    this.goTo(this.stepIndex >= this.steps.length - 1 ? 0 : this.stepIndex + 1, this.stepIndex < this.steps.length - 1);
  }

  pause() {
    this.playing = false;
    this.ui.play.textContent = '▶';
    clearTimeout(this.holdTimer);
  }

  /** Moves every panel to step `index`: from where its points are to that step's layout, interpolated. */
  goTo(index, animate = true) {
    const step = this.steps[index];
    this.stepIndex = index;
    this.ui.slider.value = index;
    this.ui.stepLabel.textContent = step === undefined ? '' : `step ${step} (${index + 1} of ${this.steps.length})`;
    for (const panel of this.panels) {
      panel.tensorName = step === undefined ? null : this.data.tensorAt(panel.source, step, this.kind);
      const target = this.data.xy(panel.tensorName, this.kind);
      panel.from = panel.shown && target && panel.shown.length === target.length && animate ? panel.shown : target;
      panel.to = target;
      panel.shown = target && new Float32Array(panel.from);
      this.label(panel, step);
    }
    this.recolor(false);
    this.animationStart = performance.now();
    document.body.dataset.state = 'animating';
    if (!this.frameRequested) {
      this.frameRequested = true;
      requestAnimationFrame((now) => this.frame(now));
    }
  }

  label(panel, step) {
    const separability = [...panel.source.separability].filter(([s]) => s <= step).pop();
    panel.corner.textContent = separability ? `separability ${separability[1].toFixed(3)}` : '';
    panel.tensor.textContent = panel.tensorName || '';
    panel.canvas.dataset.tensor = panel.tensorName || '';
    panel.open.title = panel.tensorName ? `Open ${panel.tensorName} in the PROJECTOR` : '';
    panel.note.textContent = panel.tensorName ? '' : `no ${LAYOUT_NAMES[this.kind] || this.kind} layout at this step`;
  }

  frame(now) {
    this.frameRequested = false;
    const t = Math.min(1, (now - this.animationStart) / ANIMATION_MS);
    const eased = t * t * (3 - 2 * t);
    for (const panel of this.panels) {
      if (!panel.shown) continue;
      const {from, to, shown} = panel;
      for (let i = 0; i < shown.length; i++) shown[i] = from[i] + (to[i] - from[i]) * eased;
    }
    this.draw();
    if (t < 1) {
      this.frameRequested = true;
      requestAnimationFrame((next) => this.frame(next));
      return;
    }
    document.body.dataset.step = this.steps[this.stepIndex];
    document.body.dataset.state = 'ready';
    if (this.playing) {
      const last = this.stepIndex >= this.steps.length - 1;
      this.holdTimer = setTimeout(() => (last ? this.pause() : this.goTo(this.stepIndex + 1)), last ? 0 : HOLD_MS);
    }
  }

  // ---- colours, search, hover, selection ------------------------------------------------------------------
  /** Colours (and search matches) of a metadata table, computed once per table, column and query. */
  scale(table, file) {
    const column = this.ui.colorBy.value;
    const key = `${file}\n${column}`;
    if (!this.scales.has(key)) {
      const scale = views.colorScale(table, column);
      this.scales.set(key, {...scale, faded: views.fade(scale.colors)});
    }
    return this.scales.get(key);
  }

  /** 1 for each row whose search column matches the search box's regular expression (as the PROJECTOR's search
   * in regex mode: case-insensitive), once per table, column and query; null without a query. */
  matches(table, file) {
    const query = this.ui.search.value;
    if (!query) return null;
    const column = this.ui.searchBy.value;
    if (this.found?.query !== `${column}\n${query}`) {
      this.found = {query: `${column}\n${query}`, regex: new RegExp(query, 'i'), tables: new Map()};
    }
    const {regex, tables} = this.found;
    if (!tables.has(file)) {
      tables.set(file, Uint8Array.from(table.values[column], (v) => (v !== null && regex.test(String(v)) ? 1 : 0)));
    }
    return tables.get(file);
  }

  /** Recomputes colours, legend and search matches for the shown step; redraws unless `redraw` is false. */
  recolor(redraw = true) {
    const table = this.table();
    if (!table || !this.data) return;
    const file = this.data.info.tensors[this.panels.find((p) => p.tensorName)?.tensorName]?.metadata;
    views.showLegend(this.ui.legend, this.scale(table, file).legend);
    try {
      const found = this.matches(table, file);
      this.ui.searchMessage.textContent = found ? `${found.reduce((a, b) => a + b, 0)} matches.` : '';
    } catch (error) {
      this.ui.searchMessage.textContent = 'Invalid regular expression.';
    }
    if (redraw) this.draw();
  }

  draw() {
    const start = performance.now();
    for (const panel of this.panels) {
      const table = this.data.table(panel.tensorName);
      const file = panel.tensorName && this.data.info.tensors[panel.tensorName].metadata;
      const scale = table ? this.scale(table, file) : null;
      let emphasis = null;
      try {
        emphasis = table ? this.matches(table, file) : null;
      } catch (error) {
        emphasis = null; // an invalid expression: the message says so, the points stay as they are
      }
      panel.draw({
        xy: panel.shown, colors: scale && scale.colors, faded: scale && scale.faded, emphasis,
        size: views.pointSize(panel.shown ? panel.shown.length / 2 : 0), selected: this.selected,
        path: this.path(panel), hovered: this.hovered,
      });
    }
    performance.measure('layers-frame', {start});
  }

  /** The selected example's positions at every step of the panel's layer. */
  path(panel) {
    if (this.selected === null) return null;
    return [...panel.source.tensors.values()].map((name) => this.data.xy(name, this.kind))
        .filter((xy) => xy && 2 * this.selected < xy.length)
        .map((xy) => [xy[2 * this.selected], xy[2 * this.selected + 1]]);
  }

  hover(panel, event) {
    const index = panel ? panel.pick(event.offsetX, event.offsetY) : -1;
    const hovered = index >= 0 ? index : null;
    if (hovered !== null) {
      views.showTooltip(this.ui.tooltip, {x: event.clientX, y: event.clientY, index: hovered,
        sprite: this.data.sprite(panel.tensorName), table: this.data.table(panel.tensorName)});
    } else {
      views.hideTooltip(this.ui.tooltip);
    }
    if (hovered !== this.hovered) {
      this.hovered = hovered;
      this.draw();
    }
  }

  select(index) {
    this.selected = index >= 0 ? index : null;
    const table = this.table();
    const column = this.ui.colorBy.value;
    this.ui.selection.textContent = this.selected === null ? '' :
      `Selected row ${this.selected}` + (table ? ` (${column} ${table.values[column][this.selected]})` : '') +
      ': its path over the steps is drawn in every panel. Click elsewhere to clear.';
    this.draw();
  }

  resize() {
    for (const panel of this.panels) {
      panel.resize();
      panel.setBox(panel.box);
    }
    if (this.data) this.draw();
  }

  /** Picks up new steps and recomputed layouts: the run's generation changes with every publication. */
  async poll() {
    if (document.hidden || !this.info || this.polling || this.playing) return;
    this.polling = true;
    try {
      const info = await fetchRunInfo(this.info.run);
      if (info.generation !== this.info.generation) await this.load(info, true);
    } catch (error) {
      this.ui.status.textContent = String(error.message || error);
    } finally {
      this.polling = false;
    }
  }
}
