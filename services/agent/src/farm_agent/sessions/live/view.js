// Shows the session's screen: JPEG frames pushed over a WebSocket next to this page.
"use strict";
(function () {
  const screen = document.getElementById("screen");
  const state = document.getElementById("state");
  const address = new URL("live/frames", location.href);
  address.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  address.search = "";
  const socket = new WebSocket(address);
  socket.binaryType = "blob";
  let shown = null;
  socket.onopen = () => { state.textContent = "live"; };
  socket.onmessage = (event) => {
    const url = URL.createObjectURL(event.data);
    screen.onload = () => { if (shown) URL.revokeObjectURL(shown); shown = url; };
    screen.src = url;
  };
  socket.onclose = (event) => {
    state.textContent = "ended" + (event.reason ? ": " + event.reason : "");
  };
})();
