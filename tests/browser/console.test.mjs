// The operator console in headless Chromium (run by scripts/browser-test, which starts the real
// gateway on the sandbox and sets CONSOLE_BASE, CONSOLE_FRONTPAYMENT, CONSOLE_CHARGEAPI and
// CONSOLE_SCREENS). Records are driven through the sandbox's admin API and the gateway's /v1 API;
// everything else is done as an operator would, in the browser.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const BASE = process.env.CONSOLE_BASE;
const FP = process.env.CONSOLE_FRONTPAYMENT;
const CH = process.env.CONSOLE_CHARGEAPI;
const SCREENS = process.env.CONSOLE_SCREENS;
const DEMO_KEY = "cg_demo_key_local_only";
const SCRIPT = "<script>alert('xss-script')</script>";
const IMG = '"><img src=x onerror=alert(\'xss-img\')>';

let browser;
let context;
let page;
const dialogs = [];
const pageErrors = [];
const consoleErrors = [];
const requests = [];
const records = {};

async function api(method, url, body, bearer) {
  const headers = { "content-type": "application/json" };
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  const response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

async function cancellation(id) {
  return (await api("GET", `${BASE}/v1/cancellations/${id}`, undefined, DEMO_KEY)).body;
}

async function settled(answer) {
  const id = answer.body.id ?? answer.body.cancellation_id;
  for (let i = 0; i < 300; i++) {
    const record = await cancellation(id);
    if (record.status !== "processing") return record;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${id} still processing`);
}

/// Front Payment cancels, then the connection is reset: the gateway cannot tell, needs review.
async function frontpaymentInReview(order) {
  const reservation = await api("POST", `${FP}/_sandbox/reservations`, {});
  assert.equal(reservation.status, 201, JSON.stringify(reservation.body));
  const uuid = reservation.body.uuid;
  const fault = await api("POST", `${FP}/_sandbox/faults`, { reference: uuid, times: 1, commit: true, fault: { kind: "reset" } });
  assert.ok(fault.status < 300, JSON.stringify(fault.body));
  const answer = await api("POST", `${BASE}/v1/cancellations`, { provider: "frontpayment", reference: uuid, metadata: { order_id: order } }, DEMO_KEY);
  const record = await settled(answer);
  assert.equal(record.status, "needs_review", JSON.stringify(record));
  return record;
}

async function shot(name) {
  await page.screenshot({ path: `${SCREENS}/${name}.png`, fullPage: true });
}

before(async () => {
  assert.ok(BASE && FP && CH && SCREENS, "run by scripts/browser-test");
  records.review = await frontpaymentInReview("B-1001");
  records.csrf = await frontpaymentInReview("B-1002");
  // ChargeAPI refuses with a body holding markup; the caller's metadata holds some too.
  const reservation = await api("POST", `${CH}/_sandbox/reservations`, {});
  assert.equal(reservation.status, 201, JSON.stringify(reservation.body));
  const body = { error: { type: "invalid_request_error", code: IMG, message: SCRIPT } };
  const fault = await api("POST", `${CH}/_sandbox/faults`, { reference: reservation.body.id, times: 1, fault: { kind: "status", status: 400, body } });
  assert.ok(fault.status < 300, JSON.stringify(fault.body));
  const hostile = await api("POST", `${BASE}/v1/cancellations`, { provider: "chargeapi", reference: reservation.body.id, metadata: { note: SCRIPT, [IMG]: IMG } }, DEMO_KEY);
  records.hostile = await settled(hostile);
  const done = await api("POST", `${BASE}/v1/cancellations`, { provider: "accommodation", reference: "BK_EXAMPLE_001", metadata: { order_id: "A-1003" } }, DEMO_KEY);
  assert.equal(done.status, 200, JSON.stringify(done.body));

  browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  context = await browser.newContext({ viewport: { width: 1366, height: 768 } });
  page = await context.newPage();
  page.on("dialog", async (d) => { dialogs.push(d.message()); await d.dismiss(); });
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  page.on("request", (r) => requests.push(r.url()));
});

after(async () => {
  await browser?.close();
});

test("sign in: a wrong key is refused, the demo key opens the cancellations", async () => {
  await page.goto(`${BASE}/console`);
  await shot("01-sign-in");
  await page.fill("#key", "cg_not_a_key");
  await page.click("button[type=submit]");
  assert.match(await page.textContent("#error"), /not a client key/);
  await shot("02-sign-in-refused");
  await page.fill("#key", DEMO_KEY);
  await page.click("button[type=submit]");
  assert.equal(new URL(page.url()).pathname, "/console/cancellations");
  assert.equal(await page.textContent("#client-name"), "demo");
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === "cg_console");
  assert.ok(session && session.httpOnly && session.sameSite === "Strict" && session.path === "/console", JSON.stringify(cookies));
  assert.notEqual(session.value, DEMO_KEY);
  await shot("03-cancellations");
});

test("filter: status and provider narrow the list", async () => {
  await page.selectOption("select[name=status]", "needs_review");
  await page.selectOption("select[name=provider]", "frontpayment");
  await page.click("#filters button[type=submit]");
  const url = new URL(page.url());
  assert.equal(url.searchParams.get("status"), "needs_review");
  assert.equal(url.searchParams.get("provider"), "frontpayment");
  const badges = await page.$$eval("#cancellations tbody .badge", (els) => els.map((e) => e.textContent));
  assert.ok(badges.length >= 2, String(badges));
  assert.ok(badges.every((b) => b === "needs review"), String(badges));
  const text = await page.textContent("#cancellations");
  assert.ok(text.includes(records.review.id) && !text.includes(records.hostile.id));
  await shot("04-filtered");
});

test("review: open a needs_review record, resolve it with a note, see it leave the queue", async () => {
  await page.click("#nav-review");
  const before = Number(await page.textContent("#review-count"));
  assert.ok(before >= 2, String(before));
  await shot("05-review-queue");
  await page.click(`a[href="/console/cancellations/${records.review.id}"]`);
  assert.equal(await page.textContent("#status"), "needs review");
  assert.match(await page.textContent("#attempts"), /ambiguous/);
  assert.match(await page.textContent("#retry-refusal"), /Resolve it instead/);
  await shot("06-detail-needs-review");
  await page.check("input[name=status][value=cancelled]");
  await page.fill("textarea[name=note]", "Front Payment support confirmed the cancellation <b>by phone</b>.");
  await page.click("#resolve-form button[type=submit]");
  assert.match(await page.textContent("#done"), /Resolved: this cancellation is now cancelled/);
  assert.equal(await page.textContent("#status"), "cancelled");
  assert.equal(await page.textContent("#resolution-note"), "Front Payment support confirmed the cancellation <b>by phone</b>.");
  await shot("07-detail-resolved");
  // Its events (needs_review, then cancelled by the resolution) and their deliveries.
  for (let i = 0; i < 50 && (await page.locator("#events .badge.delivery-delivered").count()) < 2; i++) {
    await page.waitForTimeout(100);
    await page.reload();
  }
  const events = await page.textContent("#events");
  assert.match(events, /cancellation\.needs_review/);
  assert.match(events, /cancellation\.cancelled/);
  assert.equal(await page.locator("#events .badge.delivery-delivered").count(), 2);
  await page.locator("#events .redeliver-form button").first().click();
  assert.match(await page.textContent("#done"), /Redelivery queued/);
  await shot("07b-detail-events");
  await page.click("#nav-review");
  assert.equal(Number(await page.textContent("#review-count")), before - 1);
  assert.ok(!(await page.textContent("#cancellations")).includes(records.review.id), "it left the queue");
  assert.equal((await cancellation(records.review.id)).resolution.by, "demo");
});

test("a form posted without its CSRF token is refused and changes nothing", async () => {
  await page.goto(`${BASE}/console/cancellations/${records.csrf.id}`);
  await page.evaluate(() => document.querySelector("#resolve-form input[name=csrf]").remove());
  await page.check("input[name=status][value=failed]");
  await page.fill("textarea[name=note]", "forged");
  const [response] = await Promise.all([page.waitForNavigation(), page.click("#resolve-form button[type=submit]")]);
  assert.equal(response.status(), 403);
  assert.match(await page.textContent("#error"), /Nothing was changed/);
  await shot("08-csrf-refused");
  const record = await cancellation(records.csrf.id);
  assert.equal(record.status, "needs_review");
  assert.equal(record.resolution, null);
});

test("markup in metadata and in an upstream body is text; no script runs", async () => {
  await page.goto(`${BASE}/console/cancellations/${records.hostile.id}`);
  const cells = await page.$$eval("#metadata td", (els) => els.map((e) => e.textContent));
  assert.ok(cells.includes(SCRIPT) && cells.includes(IMG), JSON.stringify(cells));
  const body = await page.textContent("#attempts pre.body");
  assert.ok(body.includes(SCRIPT) && body.includes(IMG), body);
  assert.equal(await page.$$eval("img[src=x]", (els) => els.length), 0);
  assert.equal(await page.$$eval("script", (els) => els.length), 0);
  await page.waitForTimeout(300);
  await shot("09-detail-hostile");
  await page.goto(`${BASE}/console/cancellations`);
  await shot("10-cancellations-all");
});

test("providers' health", async () => {
  await page.goto(`${BASE}/console/providers`);
  const text = await page.textContent("#providers");
  for (const id of ["chargeapi", "frontpayment", "accommodation"]) assert.ok(text.includes(id), text);
  await shot("11-providers");
});

test("a laptop's larger screen", async () => {
  await page.setViewportSize({ width: 1920, height: 1080 });
  await page.goto(`${BASE}/console/cancellations`);
  await shot("12-cancellations-1920");
  await page.goto(`${BASE}/console/cancellations/${records.csrf.id}`);
  await shot("13-detail-1920");
  await page.setViewportSize({ width: 1366, height: 768 });
});

test("sign out ends the session", async () => {
  await page.goto(`${BASE}/console/cancellations`);
  await page.click("#sign-out");
  assert.equal(new URL(page.url()).pathname, "/console");
  assert.ok(await page.$("#key"));
  await page.goto(`${BASE}/console/review`);
  assert.equal(new URL(page.url()).pathname, "/console", "signed out: back at the sign-in form");
  await shot("14-signed-out");
});

test("no dialog, no page error, no request to another host", () => {
  assert.deepEqual(dialogs, []);
  assert.deepEqual(pageErrors, []);
  const origin = new URL(BASE).origin;
  const elsewhere = requests.filter((u) => new URL(u).origin !== origin);
  assert.deepEqual(elsewhere, []);
  assert.ok(requests.some((u) => u.endsWith("/console/assets/console.css")), "the stylesheet came from the gateway");
  // The refused sign-in (401) and the refused form (403) are answered so on purpose: only those
  // may show as errors (a CSP violation or a failed asset would show here too).
  assert.deepEqual(consoleErrors.filter((m) => !/status of (401|403)\b/.test(m)), []);
});
