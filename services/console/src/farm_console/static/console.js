/* The console's own script (the CSP allows no inline script).

   The live parts of a page refresh themselves with htmx, which leaves a part as it was
   when its refresh fails (the farm refuses it, or the console does not answer). Without a
   word, an operator would take a fleet from before an outage for the fleet now: so the
   page says, above its content, since when it has not been refreshed and why, until a
   refresh succeeds again. The reason is the text of the refusal the console answered
   with (its role=alert element), read as text: nothing in it is taken as markup.

   A Copy button (data-copy naming an input, as a CDP token's URLs) copies that input's
   value to the clipboard, and selects it, so that it can be copied by hand where the
   browser allows no clipboard (a page not served over https or from localhost). */
"use strict";
(() => {
  let lastRefreshed = new Date();

  function reason(detail) {
    const answer = detail.xhr;
    if (!answer || !answer.status) {
      return "the console did not answer";
    }
    const page = new DOMParser().parseFromString(answer.responseText || "", "text/html");
    const alert = page.querySelector("[role=alert]");
    const said = alert ? alert.textContent.replace(/\s+/g, " ").trim() : "";
    return `HTTP ${answer.status}` + (said ? `: ${said}` : "");
  }

  function refreshFailed(event) {
    const notice = document.getElementById("refresh-failed");
    if (!notice) {
      return;
    }
    notice.textContent =
      `Not refreshed since ${lastRefreshed.toLocaleTimeString()} (${reason(event.detail)}): ` +
      "what this page shows may be out of date. It keeps trying.";
    notice.hidden = false;
  }

  document.addEventListener("click", (event) => {
    const button = event.target instanceof Element && event.target.closest("button[data-copy]");
    const field = button && document.getElementById(button.dataset.copy);
    if (!field) {
      return;
    }
    field.select();
    const byHand = () => {
      button.textContent = "Selected: copy it";
    };
    if (!navigator.clipboard) {
      byHand();
      return;
    }
    navigator.clipboard.writeText(field.value).then(() => {
      button.textContent = "Copied";
    }, byHand);
  });

  document.addEventListener("htmx:responseError", refreshFailed);
  document.addEventListener("htmx:sendError", refreshFailed);
  document.addEventListener("htmx:afterRequest", (event) => {
    if (!event.detail.successful) {
      return;
    }
    lastRefreshed = new Date();
    const notice = document.getElementById("refresh-failed");
    if (notice) {
      notice.hidden = true;
    }
  });
})();
