// Drives Debian's Chromium through playwright-core for tests/e2e/test_console.py:
// runs the steps given as JSON and prints what they read, as JSON.
//
//   node drive.mjs STEPS_JSON
//
// STEPS_JSON: {"base": "http://127.0.0.1:PORT", "screenshots": "DIR", "steps": [...]}, each step one of
//   {"goto": "/path?query"}                  load a page, waiting until it is loaded
//   {"click": "css selector"}                click the first match
//   {"press": "Key"}                         press a key on the focused element
//   {"fill": "css selector", "value": "…"}   type into a field
//   {"set": "css selector", "value": "…"}    set a field's value as a script would (date and time fields)
//   {"wait": "css selector"}                 wait until a match is visible
//   {"texts": "css selector", "as": "key"}   read the rendered text of every match
//   {"contents": "css selector", "as": "key"} read the text content of every match (SVG titles too)
//   {"attribute": "css selector", "name": "…", "as": "key"}  read an attribute of every match
//   {"screenshot": "name"}                   save DIR/name.png (the full page)
// and prints {"key": [...], ..., "url": the last URL, "errors": script errors and dialogs}.
import { chromium } from "playwright-core";

const plan = JSON.parse(process.argv[2]);
const browser = await chromium.launch({
  executablePath: process.env.BATON_CHROMIUM || "/usr/bin/chromium",
  // The machine has no network beyond loopback: Chromium must not try.
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
const results = { errors: [] };
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on("pageerror", (error) => results.errors.push(String(error)));
  // A dialog means a value's markup ran as script.
  page.on("dialog", async (dialog) => {
    results.errors.push(`dialog: ${dialog.message()}`);
    await dialog.dismiss();
  });
  for (const step of plan.steps) {
    if (step.goto !== undefined) {
      await page.goto(plan.base + step.goto, { waitUntil: "load" });
    } else if (step.click !== undefined) {
      await page.locator(step.click).first().click();
    } else if (step.press !== undefined) {
      await page.keyboard.press(step.press);
    } else if (step.fill !== undefined) {
      await page.locator(step.fill).first().fill(step.value);
    } else if (step.set !== undefined) {
      await page.locator(step.set).first().evaluate((element, value) => {
        element.value = value;
        element.dispatchEvent(new Event("input", { bubbles: true }));
      }, step.value);
    } else if (step.wait !== undefined) {
      await page.locator(step.wait).first().waitFor({ state: "visible", timeout: 5000 });
    } else if (step.texts !== undefined) {
      results[step.as] = await page.locator(step.texts).allInnerTexts();
    } else if (step.contents !== undefined) {
      results[step.as] = await page.locator(step.contents).evaluateAll(
        (elements) => elements.map((element) => element.textContent));
    } else if (step.attribute !== undefined) {
      results[step.as] = await page.locator(step.attribute).evaluateAll(
        (elements, name) => elements.map((element) => element.getAttribute(name)), step.name);
    } else if (step.screenshot !== undefined) {
      await page.screenshot({ path: `${plan.screenshots}/${step.screenshot}.png`, fullPage: true });
    } else {
      throw new Error(`unknown step ${JSON.stringify(step)}`);
    }
  }
  results.url = page.url();
} finally {
  await browser.close();
}
console.log(JSON.stringify(results));
