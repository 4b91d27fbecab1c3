// Whether the page is a secure context, and the http URLs its elements load.
() => {
  const loaders = "img[src], script[src], link[rel~='stylesheet' i][href], iframe[src], " +
    "audio[src], video[src], source[src], embed[src], object[data], track[src]";
  const urls = [...document.querySelectorAll(loaders)]
    .map((element) => element.src || element.href || element.data || "")
    .filter((url) => url.startsWith("http:"))
    .map((url) => url.split("?")[0]);
  return { secureContext: window.isSecureContext, insecureUrls: [...new Set(urls)] };
}
