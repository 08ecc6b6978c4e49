// The layers dashboard's entry point (TensorBoard imports it and calls render()): wires the controls, the
// panels and the step animation to the run's data. model.js fetches, views.js draws.

import {RunData, fetchRunInfo, fetchRuns} from './model.js';
import {Motion} from './motion.js';
import {openInProjector} from './projector_link.js';
import * as views from './views.js';

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
    this.styles = new views.Styles();
    this.motion = new Motion(() => this.draw(), () => this.settled());
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

  /** The metadata of the first panel's shown (else first) tensor: every layer's snapshot at one step shares it. */
  table() {
    const names = this.panels.map((p) => p.tensorName || p.source.tensors.values().next().value);
    return names.map((name) => this.data.table(name)).find(Boolean) || null;
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
    const note = `no ${LAYOUT_NAMES[this.kind] || this.kind} layout at this step`;
    for (const panel of this.panels) {
      panel.tensorName = step === undefined ? null : this.data.tensorAt(panel.source, step, this.kind);
      panel.label(panel.tensorName, this.data.separabilityAt(panel.source, step), note);
    }
    this.recolor(false);
    this.motion.start(this.panels, this.panels.map((p) => this.data.xy(p.tensorName, this.kind)), animate);
  }

  settled() {
    document.body.dataset.step = this.steps[this.stepIndex];
    document.body.dataset.state = 'ready';
    if (this.playing) {
      const last = this.stepIndex >= this.steps.length - 1;
      this.holdTimer = setTimeout(() => (last ? this.pause() : this.goTo(this.stepIndex + 1)), last ? 0 : HOLD_MS);
    }
  }

  // ---- colours, search, hover, selection ------------------------------------------------------------------
  /** Recomputes colours, legend and search matches for the shown step; redraws unless `redraw` is false. */
  recolor(redraw = true) {
    const table = this.data && this.table();
    if (!table) return;
    views.showLegend(this.ui.legend, this.styles.colors(table, this.ui.colorBy.value).legend);
    const found = this.styles.matches(table, this.ui.searchBy.value, this.ui.search.value);
    this.ui.searchMessage.textContent = this.styles.invalid ? 'Invalid regular expression.' :
      found ? `${found.reduce((a, b) => a + b, 0)} matches.` : '';
    if (redraw) this.draw();
  }

  draw() {
    const start = performance.now();
    for (const panel of this.panels) {
      const table = this.data.table(panel.tensorName);
      const scale = table && this.styles.colors(table, this.ui.colorBy.value);
      const emphasis = table && this.styles.matches(table, this.ui.searchBy.value, this.ui.search.value);
      panel.draw({
        xy: panel.shown, colors: scale && scale.colors, faded: scale && scale.faded, emphasis,
        size: views.pointSize(panel.shown ? panel.shown.length / 2 : 0), selected: this.selected,
        path: this.selected === null ? null : this.data.path(panel.source, this.kind, this.selected),
        hovered: this.hovered,
      });
    }
    performance.measure('layers-frame', {start});
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
    this.panels.forEach((panel) => panel.resize());
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
