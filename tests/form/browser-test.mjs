// The setup form and the preview's HTML report in Debian's headless Chromium (driven by
// playwright-core), checked as a new user would see them; screenshots go to docs/images/.
//   node browser-test.mjs [--report REPORT.html --report-json REPORT.json]
// Prints one line per check and "N passed, N failed" last; exits 1 when a check failed.
import { chromium } from "playwright-core";
import { createServer } from "node:http";
import { readFileSync, mkdirSync } from "node:fs";
import { extname, join } from "node:path";

const here = new URL(".", import.meta.url).pathname;
const repo = join(here, "..", "..");
const images = join(repo, "docs", "images");
const spec = JSON.parse(readFileSync(join(repo, "spec.json"), "utf8")).connectionSpecification;
const args = process.argv.slice(2);
const option = (name) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);

const results = [];
async function check(name, body) {
  try {
    await body();
    results.push([name, null]);
    console.log(`ok - ${name}`);
  } catch (error) {
    results.push([name, error]);
    console.log(`FAILED - ${name}: ${error.message}`);
  }
}
function assert(condition, message) {
  if (!condition) throw new Error(message);
}

/** Serves dist/ on a free loopback port. */
function serve() {
  const types = { ".html": "text/html", ".js": "text/javascript" };
  const server = createServer((request, response) => {
    const file = request.url === "/" ? "index.html" : request.url.slice(1);
    try {
      const body = readFileSync(join(here, "dist", file));
      response.writeHead(200, { "content-type": types[extname(file)] || "application/octet-stream" });
      response.end(body);
    } catch {
      response.writeHead(404).end();
    }
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const server = await serve();
mkdirSync(images, { recursive: true });

/** A new page that records console errors and uncaught exceptions. */
async function open(url, viewport = { width: 1000, height: 760 }) {
  const page = await browser.newPage({ viewport });
  const errors = [];
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(url);
  return { page, errors };
}

const formUrl = `http://127.0.0.1:${server.address().port}/`;
const required = spec.required;
const topLevel = Object.keys(spec.properties);
/** The top-level fields a person can see now, in page order. */
async function visibleFields(page) {
  const seen = [];
  for (const name of topLevel) {
    const box = await page.locator(`#root_${name}`).first().boundingBox().catch(() => null);
    if (box && (await page.locator(`#root_${name}`).first().isVisible())) seen.push([name, box.y]);
  }
  return seen.sort((a, b) => a[1] - b[1]).map(([name]) => name);
}
async function errorsOf(page, name) {
  return (await page.locator(`#root_${name}`).locator("xpath=ancestor::div[contains(@class,'form-group')][1]")
    .locator(".error-detail").allTextContents()).join(" ");
}
async function openOptional(page) {
  for (const details of await page.locator("details.optional").all()) {
    await details.evaluate((d) => (d.open = true));
  }
}
async function fill(page, values) {
  for (const [name, value] of Object.entries(values)) await page.fill(`#root_${name}`, value);
}
const submit = (page) => page.click("button[type=submit]");

const form = await open(formUrl);
const { page } = form;
await page.waitForSelector("#root_api_key");

await check("required fields come first, alone in their card; other fields wait in Optional fields", async () => {
  const shown = await visibleFields(page);
  const alwaysShown = topLevel.filter((n) => spec.properties[n].always_show);
  assert(JSON.stringify(shown.slice(0, required.length)) === JSON.stringify(required),
    `first fields are ${shown.slice(0, 2)}, expected ${required}`);
  const extra = shown.filter((n) => !required.includes(n) && !alwaysShown.includes(n));
  assert(extra.length === 0, `optional fields shown before opening their section: ${extra}`);
  const firstCard = page.locator("section.card").first();
  const inFirst = [];
  for (const name of topLevel) if (await firstCard.locator(`#root_${name}`).count()) inFirst.push(name);
  assert(JSON.stringify(inFirst) === JSON.stringify(required), `the first card holds ${inFirst}`);
  await page.screenshot({ path: join(images, "form-first-screen.png") });
});

await check("the API key is masked", async () => {
  assert((await page.getAttribute("#root_api_key", "type")) === "password", "the key input is not a password input");
});

await check("a key without a data-center suffix is refused inline, with the format in words", async () => {
  await fill(page, { api_key: "0123456789abcdef0123456789abcdef", list_id: "a1b2c3d4e5" });
  await submit(page);
  const message = await errorsOf(page, "api_key");
  assert(message.includes(spec.properties.api_key.pattern_descriptor), `the key's error says: "${message}"`);
  assert((await page.locator("#submitted").count()) === 0, "the form was submitted");
});

await check("batch size 501 is refused, 500 is taken", async () => {
  await openOptional(page);
  await fill(page, { api_key: "0123456789abcdef0123456789abcdef-us6", batch_size: "501" });
  await submit(page);
  const message = await errorsOf(page, "batch_size");
  assert(/500/.test(message), `batch size 501 gave "${message}"`);
  assert((await page.locator("#submitted").count()) === 0, "the form was submitted");
  await fill(page, { batch_size: "500" });
  await submit(page);
  const submitted = JSON.parse(await page.textContent("#submitted"));
  assert(submitted.batch_size === 500 && submitted.api_key.endsWith("-us6"), `submitted ${JSON.stringify(submitted)}`);
});

await check("every optional field is reachable once its section is opened", async () => {
  const fresh = await open(formUrl);
  await fresh.page.waitForSelector("#root_api_key");
  await openOptional(fresh.page);
  const shown = await visibleFields(fresh.page);
  const missing = topLevel.filter((n) => !shown.includes(n));
  assert(missing.length === 0, `not reachable: ${missing}`);
  await fresh.page.screenshot({ path: join(images, "form-optional-fields.png"), fullPage: true });
  assert(fresh.errors.length === 0, fresh.errors.join(" | "));
});

await check("the form logs no console errors", async () => {
  assert(form.errors.length === 0, form.errors.join(" | "));
});

const reportFile = option("--report");
if (reportFile) {
  const expected = JSON.parse(readFileSync(option("--report-json"), "utf8"));
  const report = await open(`file://${reportFile}`, { width: 1000, height: 900 });
  await check("the preview's HTML report renders with the numbers preview printed", async () => {
    const text = await report.page.textContent("body");
    for (const key of ["records", "contacts", "created", "updated", "rejected"]) {
      const cell = await report.page.locator(`[data-count="${key}"]`).textContent();
      assert(cell.replace(/[^0-9]/g, "") === String(expected[key]), `${key}: page shows "${cell}", preview printed ${expected[key]}`);
    }
    for (const reason of Object.keys(expected.rejected_by_reason)) {
      assert(text.includes(reason), `the rejection reason "${reason}" is missing`);
    }
    assert(text.includes(expected.audience), "the audience's name is missing");
    await report.page.screenshot({ path: join(images, "preview-report.png"), fullPage: true });
  });
  await check("the HTML report logs no console errors", async () => {
    assert(report.errors.length === 0, report.errors.join(" | "));
  });
}

await browser.close();
server.close();
const failed = results.filter(([, error]) => error).length;
console.log(`${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
