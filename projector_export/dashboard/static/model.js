// Fetches what the layers dashboard shows from the plugin's routes (relative URLs: the page's base is the
// plugin's folder, /data/plugin/projector_layers/) and holds it: one run's layers, steps, coordinates,
// metadata and sprite. Files are fetched once per content (their content-addressed names key the cache).

const CONCURRENT_REQUESTS = 6;

/** GET `route?params` and return the response; an Error carrying the server's message otherwise. */
async function get(route, params) {
  const response = await fetch(`./${route}?${new URLSearchParams(params)}`);
  if (!response.ok) {
    throw new Error(`${route}: ${response.status} ${(await response.text()).trim()}`);
  }
  return response;
}

/** Runs with snapshot tensors: [{run, layouts, tensors}]. */
export async function fetchRuns() {
  return (await get('runs', {})).json();
}

/** One run as the server lists it: layers, tensors, separability, generation, hint. */
export async function fetchRunInfo(run) {
  return (await get('run', {run})).json();
}

/** Runs `task(item)` for every item, at most CONCURRENT_REQUESTS at a time. */
async function forEachLimited(items, task) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      await task(items[next++]);
    }
  };
  await Promise.all(Array.from({length: Math.min(CONCURRENT_REQUESTS, items.length)}, worker));
}

/** A metadata TSV parsed as TensorBoard's PROJECTOR parses it: blank lines skipped, a header when the first
 * line has a tab (else one column called "label"), an empty cell read as null. */
export function parseMetadata(text) {
  const lines = text.split('\n').filter((line) => line.trim().length > 0);
  const hasHeader = lines.length > 0 && lines[0].includes('\t');
  const columns = hasHeader ? lines[0].split('\t') : ['label'];
  const rows = hasHeader ? lines.slice(1) : lines;
  const values = Object.fromEntries(columns.map((c) => [c, new Array(rows.length)]));
  rows.forEach((line, i) => {
    const cells = line.split('\t');
    columns.forEach((c, k) => {
      values[c][i] = cells[k] === undefined || cells[k] === '' ? null : cells[k];
    });
  });
  return {columns, values, rows: rows.length};
}

/** One run's data for the dashboard, loaded layout kind by layout kind. */
export class RunData {
  constructor(info, cache) {
    this.info = info;
    this.run = info.run;
    this.cache = cache; // survives refreshes of the same run: file contents by content-addressed name
    this.layers = info.layers.map((layer) => ({
      name: layer.name,
      tensors: new Map(Object.entries(layer.tensors).map(([step, name]) => [Number(step), name])),
      separability: new Map(info.separability[layer.name] || []),
    }));
    this.steps = [...new Set(this.layers.flatMap((l) => [...l.tensors.keys()]))].sort((a, b) => a - b);
    this.layouts = new Map(); // tensor -> [{layout, dims, rows, colorBy, label, ...}]
    this.coordinates = new Map(); // `${tensor}\n${kind}` -> Float32Array, x and y of each row
    this.tables = new Map(); // metadata file -> parsed table
    this.sprites = new Map(); // sprite file -> {image, cell}
  }

  /** Every tensor's list of layouts, the metadata and the sprites; `progress(done, total)` as they arrive. */
  async load(progress) {
    const tensors = Object.entries(this.info.tensors).filter(([, t]) => t.bookmarks);
    let done = 0;
    const total = tensors.length;
    await forEachLimited(tensors, async ([name, t]) => {
      this.layouts.set(name, await this.cached(`layouts\n${name}\n${t.bookmarks}`,
          async () => (await get('layouts', {run: this.run, tensor: name})).json()));
      progress(++done, total);
    });
    const byFile = (key) => new Map(Object.entries(this.info.tensors).filter(([, t]) => t[key])
        .map(([name, t]) => [t[key], name]));
    await forEachLimited([...byFile('metadata')], async ([file, name]) => {
      this.tables.set(file, await this.cached(`metadata\n${file}`,
          async () => parseMetadata(await (await get('metadata', {run: this.run, tensor: name})).text())));
    });
    await forEachLimited([...byFile('sprite')], async ([file, name]) => {
      const cell = this.info.tensors[name].spriteCell;
      this.sprites.set(file, await this.cached(`sprite\n${file}`, () => loadImage(
          `./sprite?${new URLSearchParams({run: this.run, tensor: name})}`).then((image) => ({image, cell}))));
    });
  }

  /** Layout kinds present for at least one tensor, in the order of the first tensor's bookmarks. */
  kinds() {
    return [...new Set([...this.layouts.values()].flat().map((l) => l.layout))];
  }

  /** The metadata column the layouts colour by (the class column), if they say. */
  colorBy() {
    const marked = [...this.layouts.values()].flat().find((l) => l.colorBy);
    return marked ? marked.colorBy : null;
  }

  /** Fetches the coordinates of layout `kind` for every tensor that has it. */
  async loadKind(kind, progress) {
    const wanted = [...this.layouts].filter(([, list]) => list.some((l) => l.layout === kind));
    let done = 0;
    await forEachLimited(wanted, async ([name, list]) => {
      const dims = list.find((l) => l.layout === kind).dims;
      const file = this.info.tensors[name].bookmarks;
      const xy = await this.cached(`xy\n${name}\n${file}\n${kind}`, async () => {
        const response = await get('coordinates', {run: this.run, tensor: name, layout: kind});
        return firstTwo(new Float32Array(await response.arrayBuffer()), dims);
      });
      this.coordinates.set(`${name}\n${kind}`, xy);
      progress(++done, wanted.length);
    });
  }

  /** x, y of every row of `tensor` in layout `kind` (Float32Array of 2 per row), or null. */
  xy(tensor, kind) {
    return (tensor && this.coordinates.get(`${tensor}\n${kind}`)) || null;
  }

  /** The layer's tensor shown at `step`: its latest snapshot at or before it that has layout `kind`. */
  tensorAt(layer, step, kind) {
    let found = null;
    for (const [s, name] of layer.tensors) {
      if (s <= step && this.xy(name, kind)) found = name;
    }
    return found;
  }

  /** [xmin, xmax, ymin, ymax] of the layer's layout `kind` over all its steps (one box, so motion shows). */
  box(layer, kind) {
    const box = [Infinity, -Infinity, Infinity, -Infinity];
    for (const name of layer.tensors.values()) {
      const xy = this.xy(name, kind);
      for (let i = 0; xy && i < xy.length; i += 2) {
        box[0] = Math.min(box[0], xy[i]);
        box[1] = Math.max(box[1], xy[i]);
        box[2] = Math.min(box[2], xy[i + 1]);
        box[3] = Math.max(box[3], xy[i + 1]);
      }
    }
    return box[0] <= box[1] ? box : null;
  }

  /** The layer's `separability/<layer>` at `step` (its last value logged at or before it), or null. */
  separabilityAt(layer, step) {
    const found = [...layer.separability].filter(([s]) => s <= step).pop();
    return found ? found[1] : null;
  }

  /** Positions of row `row` at every step of the layer in layout `kind` (its path over training). */
  path(layer, kind, row) {
    return [...layer.tensors.values()].map((name) => this.xy(name, kind))
        .filter((xy) => xy && 2 * row < xy.length).map((xy) => [xy[2 * row], xy[2 * row + 1]]);
  }

  table(tensor) {
    const t = tensor && this.info.tensors[tensor];
    return (t && this.tables.get(t.metadata)) || null;
  }

  sprite(tensor) {
    const t = tensor && this.info.tensors[tensor];
    return (t && this.sprites.get(t.sprite)) || null;
  }

  async cached(key, make) {
    if (!this.cache.has(key)) {
      this.cache.set(key, make().catch((error) => {
        this.cache.delete(key);
        throw error;
      }));
    }
    return this.cache.get(key);
  }
}

/** The first two columns of a rows×dims array (the plane the dashboard draws; a 1-D layout gets y = 0). */
function firstTwo(data, dims) {
  const rows = data.length / dims;
  const xy = new Float32Array(2 * rows);
  for (let i = 0; i < rows; i++) {
    xy[2 * i] = data[i * dims];
    xy[2 * i + 1] = dims > 1 ? data[i * dims + 1] : 0;
  }
  return xy;
}

function loadImage(url) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error(`sprite: could not load ${url}`));
    image.src = url;
  });
}
