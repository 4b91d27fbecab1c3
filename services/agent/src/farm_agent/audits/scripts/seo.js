// What the SEO audit reads from the document.
() => {
  const all = (selector) => [...document.querySelectorAll(selector)];
  const scriptedOnly = (href) => href === null || /^\s*(#\s*)?$/.test(href);
  return {
    title: document.title,
    descriptions: all('meta[name="description" i]').map((meta) => meta.content),
    robots: all('meta[name="robots" i], meta[name="googlebot" i]').map((meta) => meta.content),
    canonicals: all('link[rel~="canonical" i]').map((link) => link.getAttribute("href") || ""),
    alternates: all('link[rel~="alternate" i][hreflang]').map((link) => ({
      hreflang: link.getAttribute("hreflang"),
      href: link.getAttribute("href") || "",
      selector: selectorOf(link),
    })),
    headings: all("h1, h2, h3, h4, h5, h6").map((heading) => ({
      level: Number(heading.localName[1]),
      selector: selectorOf(heading),
    })),
    imagesWithoutAlt: all("img:not([alt])").map(selectorOf),
    uncrawlableLinks: all("a")
      .filter((link) => {
        const href = link.getAttribute("href");
        if (href !== null && /^\s*javascript:/i.test(href)) return true;
        return scriptedOnly(href) && link.hasAttribute("onclick");
      })
      .map(selectorOf),
  };
}
