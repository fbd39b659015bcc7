// Every page: a form's submit button is disabled while its request runs, so a double click
// sends it once. (The listening page's own buttons are handled in listen.js.)
document.addEventListener("submit", (e) => {
  const form = e.target;
  if (form.method === "dialog" || e.defaultPrevented) return;
  const button = e.submitter;
  // After the browser has taken the submitter's name and value.
  if (button) setTimeout(() => (button.disabled = true), 0);
});
