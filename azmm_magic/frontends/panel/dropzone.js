// The panel's drop zone (anywidget front end, loaded by dropzone.py): dropped or chosen image files go to the
// kernel as one "files" message with one buffer per file; Ctrl/Cmd+Enter in this panel's prompt sends "send";
// an "insert-cell" message from the kernel ("to new cell") inserts a code cell below the panel's cell.

const WIDGET_VIEW = "application/vnd.jupyter.widget-view+json";

// The notebook's shared model (JupyterLab 4, Notebook 7): the widget manager of a notebook holds its document
// context, whose model is the notebook. Other front ends (a console, VS Code, Colab) have none: null.
function notebookOf(model) {
  const manager = model.widget_manager;
  let context = null;
  try {
    context = manager && manager.context;
  } catch (e) {
    context = null;
  }
  const notebook = context && context.model && context.model.sharedModel;
  return notebook && typeof notebook.insertCell === "function" && notebook.cells ? notebook : null;
}

function outputsOf(cell) {
  try {
    if (typeof cell.getOutputs === "function") return cell.getOutputs() || [];
    const json = cell.toJSON ? cell.toJSON() : {};
    return json.outputs || [];
  } catch (e) {
    return [];
  }
}

function showsWidget(cell, widgetId) {
  return outputsOf(cell).some((out) => {
    const view = out && out.data && out.data[WIDGET_VIEW];
    return !!(view && view.model_id === widgetId);
  });
}

function insertCell(model, msg) {
  const notebook = notebookOf(model);
  if (!notebook) return { ok: false, reason: "this front end does not let the panel add cells" };
  const cells = Array.from(notebook.cells);
  let index = msg.widget_id ? cells.findIndex((cell) => showsWidget(cell, msg.widget_id)) : -1;
  if (index < 0 && msg.cell_id) index = cells.findIndex((cell) => cell.id === msg.cell_id);
  if (index < 0) return { ok: false, reason: "the panel's cell was not found in the notebook" };
  notebook.insertCell(index + 1, { cell_type: "code", source: msg.source, metadata: {} });
  return { ok: true, index: index + 1 };
}

// once per model in this page (not per view: a panel shown twice must not insert its cell twice)
function initialize({ model }) {
  const onMessage = (msg) => {
    if (!msg || msg.type !== "insert-cell") return;
    let answer;
    try {
      answer = insertCell(model, msg);
    } catch (e) {
      answer = { ok: false, reason: `inserting failed: ${e && e.message ? e.message : e}` };
    }
    model.send({ type: "cell-inserted", ...answer });
  };
  model.on("msg:custom", onMessage);
  return () => model.off("msg:custom", onMessage);
}

function render({ model, el }) {
  el.classList.add("azmm-drop");
  const zone = document.createElement("div");
  zone.className = "azmm-drop-zone";
  zone.setAttribute("role", "button");
  zone.tabIndex = 0;
  zone.textContent = model.get("label");
  const input = document.createElement("input");
  input.type = "file";
  input.multiple = true;
  input.accept = "image/*,.heic,.heif,.avif,application/pdf,.pdf,video/*,.mp4,.mov,.m4v,.webm,.mkv,.avi";
  input.className = "azmm-drop-input";
  input.style.display = "none";
  async function sendFiles(files) {
    const list = Array.from(files || []);
    if (!list.length) return;
    const buffers = await Promise.all(list.map((f) => f.arrayBuffer()));
    const meta = list.map((f) => ({ name: f.name, type: f.type, size: f.size }));
    model.send({ type: "files", files: meta }, undefined, buffers);
  }
  zone.addEventListener("click", () => { input.value = ""; input.click(); });
  input.addEventListener("change", () => sendFiles(input.files));
  zone.addEventListener("dragover", (e) => { e.preventDefault(); e.stopPropagation(); zone.classList.add("azmm-over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("azmm-over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    e.stopPropagation();
    zone.classList.remove("azmm-over");
    sendFiles(e.dataTransfer && e.dataTransfer.files);
  });
  // Ctrl/Cmd+Enter in this panel's prompt sends (caught before JupyterLab's own Ctrl+Enter, "run cell").
  const onKey = (e) => {
    if (e.key !== "Enter" || !(e.ctrlKey || e.metaKey)) return;
    const target = e.target;
    const prompt = target && target.closest ? target.closest(".azmm-prompt") : null;
    const panel = el.closest(".azmm-panel");
    if (!prompt || !panel || !panel.contains(prompt)) return;
    e.preventDefault();
    e.stopPropagation();
    e.stopImmediatePropagation();
    model.send({ type: "send" });
  };
  window.addEventListener("keydown", onKey, true);
  el.append(zone, input);
  return () => window.removeEventListener("keydown", onKey, true);
}
export default { initialize, render };
