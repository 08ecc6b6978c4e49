// "Open in the PROJECTOR": switches TensorBoard to its PROJECTOR tab and picks the run and tensor there.
//
// TensorBoard's page routes on its URL hash (#projector), and plugin frames are same-origin with it, so this
// frame can set the hash of the page above. The PROJECTOR has no URL for a tensor: once its own frame has
// loaded, its data panel's `selectedRun` and `selectedTensor` (the properties its menus set) are set the
// same way a person picks them. When TensorBoard's page is laid out otherwise, the tab still switches and
// the panel's title names the tensor to pick.

const PROJECTOR_TAB = 'projector';
const WAIT_MS = 60000;
const POLL_MS = 250;

export function openInProjector(run, tensor) {
  const page = window.parent;
  page.location.hash = PROJECTOR_TAB;
  if (tensor) pickWhenLoaded(page, run, tensor, Date.now() + WAIT_MS);
}

function pickWhenLoaded(page, run, tensor, deadline) {
  const panel = findDataPanel(page);
  if (loaded(panel && panel.projector)) {
    if (panel.selectedRun !== run) {
      panel.selectedRun = run;
    } else if ((panel.tensorNames || []).some((t) => t.name === tensor)) {
      if (panel.selectedTensor !== tensor) panel.selectedTensor = tensor;
      return;
    }
  }
  if (Date.now() < deadline) setTimeout(() => pickWhenLoaded(page, run, tensor, deadline), POLL_MS);
}

/** Whether the PROJECTOR has loaded and drawn a tensor with its metadata and sprite: switching before that
 * leaves it waiting for the earlier tensor's files. */
function loaded(projector) {
  const info = projector && projector.dataSet && projector.dataSet.spriteAndMetadataInfo;
  return Boolean(info && projector.projection && (!info.spriteImage || info.spriteImage.complete));
}

/** The PROJECTOR's <vz-projector-data-panel>, searched through every same-origin frame and shadow root. */
function findDataPanel(win) {
  let found = null;
  try {
    found = findElement(win.document, 'VZ-PROJECTOR-DATA-PANEL');
  } catch (error) {
    return null; // a frame of another origin
  }
  for (let i = 0; !found && i < win.frames.length; i++) found = findDataPanel(win.frames[i]);
  return found;
}

function findElement(root, tag) {
  for (const el of root.querySelectorAll('*')) {
    if (el.tagName === tag) return el;
    const inner = el.shadowRoot && findElement(el.shadowRoot, tag);
    if (inner) return inner;
  }
  return null;
}
