// The panel's drop zone (anywidget front end, loaded by dropzone.py): dropped or chosen image files go to the
// kernel as one "files" message with one buffer per file; Ctrl/Cmd+Enter in this panel's prompt sends "send".
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
export default { render };
