// The panel's drop zone (anywidget front end, loaded by dropzone.py): dropped or chosen image files go to the
// kernel as one "files" message with one buffer per file; Ctrl/Cmd+Enter in this panel's prompt sends "send";
// an "insert-cell" message from the kernel ("to new cell") inserts a code cell below the panel's cell.

const WIDGET_VIEW = "application/vnd.jupyter.widget-view+json";

// Where "to new cell" can add a cell. Each returns null where its API is absent (a console, VS Code, Colab).
// JupyterLab 4 / Notebook 7: the widget manager's document context holds the notebook's shared model.
function sharedNotebookOf(model) {
  const notebook = contextModelOf(model) && contextModelOf(model).sharedModel;
  return notebook && typeof notebook.insertCell === "function" && notebook.cells && !legacyLabModel(contextModelOf(model))
    ? notebook : null;
}

function contextModelOf(model) {
  try {
    const manager = model.widget_manager;
    const context = manager && manager.context;
    return (context && context.model) || null;
  } catch (e) {
    return null;
  }
}

// JupyterLab 3: cell models come from the notebook model's content factory and go into its observable list.
function legacyLabModel(notebookModel) {
  const ok = notebookModel && notebookModel.contentFactory && typeof notebookModel.contentFactory.createCodeCell === "function"
    && notebookModel.cells && typeof notebookModel.cells.insert === "function";
  return ok ? notebookModel : null;
}

// Classic Notebook 6 (and nbclassic): the page's global Jupyter.notebook.
function classicNotebook() {
  const nb = typeof window !== "undefined" && window.Jupyter && window.Jupyter.notebook;
  return nb && typeof nb.insert_cell_at_index === "function" && typeof nb.get_cells === "function" ? nb : null;
}

function outputsOf(cell) {
  try {
    if (typeof cell.getOutputs === "function") return cell.getOutputs() || [];
    if (cell.outputs && typeof cell.outputs.toJSON === "function") return cell.outputs.toJSON() || [];
    if (cell.output_area && Array.isArray(cell.output_area.outputs)) return cell.output_area.outputs;
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

function indexOfPanel(cells, msg) {
  let index = msg.widget_id ? cells.findIndex((cell) => showsWidget(cell, msg.widget_id)) : -1;
  if (index < 0 && msg.cell_id) index = cells.findIndex((cell) => cell.id === msg.cell_id);
  return index;
}

const NOT_FOUND = { ok: false, reason: "the panel's cell was not found in the notebook" };

function insertCell(model, msg) {
  const shared = sharedNotebookOf(model);
  if (shared) {
    const index = indexOfPanel(Array.from(shared.cells), msg);
    if (index < 0) return NOT_FOUND;
    shared.insertCell(index + 1, { cell_type: "code", source: msg.source, metadata: {} });
    return { ok: true, index: index + 1 };
  }
  const lab3 = legacyLabModel(contextModelOf(model));
  if (lab3) {
    const cells = [];
    for (let i = 0; i < lab3.cells.length; i++) cells.push(lab3.cells.get(i));
    const index = indexOfPanel(cells, msg);
    if (index < 0) return NOT_FOUND;
    const cell = lab3.contentFactory.createCodeCell({});
    cell.value.text = msg.source;
    lab3.cells.insert(index + 1, cell);
    return { ok: true, index: index + 1 };
  }
  const classic = classicNotebook();
  if (classic) {
    const index = indexOfPanel(classic.get_cells(), msg);
    if (index < 0) return NOT_FOUND;
    const cell = classic.insert_cell_at_index("code", index + 1);
    cell.set_text(msg.source);
    return { ok: true, index: index + 1 };
  }
  return { ok: false, reason: "this front end does not let the panel add cells" };
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
    // the text goes along: the prompt widget's own update may still wait in the widget manager's queue
    // (ipywidgets 7 sends one state update at a time), while this message is sent at once
    model.send({ type: "send", prompt: typeof target.value === "string" ? target.value : null });
  };
  window.addEventListener("keydown", onKey, true);
  el.append(zone, input);
  return () => window.removeEventListener("keydown", onKey, true);
}
export default { initialize, render };
