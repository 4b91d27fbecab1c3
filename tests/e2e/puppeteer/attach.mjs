// Attaches Puppeteer to a farm session's cdpUrl through Envoy and drives its page.
// Usage: node attach.mjs CDP_URL API_KEY PAGE_URL; prints one JSON line.
import puppeteer from "puppeteer-core";

const [endpoint, key, url] = process.argv.slice(2);
const browser = await puppeteer.connect({
  browserWSEndpoint: endpoint,
  headers: { authorization: `Bearer ${key}` },
});
const [page] = await browser.pages();
await page.goto(url);
await page.type("#q", "typed by puppeteer");
const title = await page.title();
const pages = (await browser.pages()).length;
await browser.disconnect();
console.log(JSON.stringify({ title, pages }));
