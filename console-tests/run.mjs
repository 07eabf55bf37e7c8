// The Plystra Console in a real browser (Debian's Chromium through playwright-core; never a downloaded one).
// Run by tests/console_browser.sh, which starts the server on a fresh demo database and sets CONSOLE_BASE,
// CONSOLE_SHOTS (screenshot folder) and CONSOLE_PROFILE (a fresh Chromium profile folder). Prints TAP lines.
import { chromium } from "playwright-core";
import { readFileSync, rmSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const BASE = process.env.CONSOLE_BASE;
const SHOTS = process.env.CONSOLE_SHOTS;
const PROFILE = process.env.CONSOLE_PROFILE;
if (!BASE || !SHOTS || !PROFILE) throw new Error("CONSOLE_BASE, CONSOLE_SHOTS and CONSOLE_PROFILE are required");
mkdirSync(SHOTS, { recursive: true });

let n = 0;
let failed = 0;
function tap(ok, description, detail) {
  n += 1;
  if (!ok) failed += 1;
  console.log(`${ok ? "ok" : "not ok"} ${n} - ${description}`);
  if (!ok && detail) console.log(`# ${String(detail).split("\n").join("\n# ")}`);
}
async function check(description, fn) {
  try {
    const detail = await fn();
    tap(detail === undefined || detail === true, description, detail);
  } catch (e) {
    tap(false, description, e && e.stack ? e.stack : e);
  }
}

// The API, for setting up hostile data (the Console itself is driven only through the browser).
async function api(method, path, token, body) {
  const r = await fetch(BASE + path, {
    method,
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await r.json().catch(() => null);
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(json)}`);
  return json.data;
}

rmSync(PROFILE, { recursive: true, force: true });
const context = await chromium.launchPersistentContext(PROFILE, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  viewport: { width: 1280, height: 900 },
  acceptDownloads: true,
});
const page = context.pages()[0] || (await context.newPage());
const alerts = [];
const cspErrors = [];
page.on("dialog", async (d) => {
  // The Console asks before a revoke (confirm); anything else (an alert) would be script the page should not run.
  if (d.type() === "confirm") await d.accept();
  else { alerts.push(`${d.type()}: ${d.message()}`); await d.dismiss(); }
});
page.on("console", (m) => { if (/Content Security Policy/i.test(m.text())) cspErrors.push(m.text()); });

const axeResults = [];
async function axe(name) {
  await page.evaluate(axeSource);
  const r = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const res = await axe.run(document, { resultTypes: ["violations"] });
    return res.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, help: v.help }));
  });
  const bad = r.filter((v) => v.impact === "serious" || v.impact === "critical");
  axeResults.push({ name, bad });
}
async function shoot(name) {
  // Both widths: the desktop and a phone. The page itself must not scroll sideways (tables and the picture
  // scroll inside their own regions).
  const widths = [1280, 390];
  const overflow = [];
  for (const w of widths) {
    await page.setViewportSize({ width: w, height: w === 390 ? 844 : 900 });
    await page.screenshot({ path: `${SHOTS}/${name}-${w}.png`, fullPage: true });
    const sideways = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    if (sideways > 1) overflow.push(`${w}px: ${sideways}px wider than the window`);
  }
  await page.setViewportSize({ width: 1280, height: 900 });
  await axe(name);
  return overflow.length ? overflow.join("; ") : true;
}

const readable = [];
async function visit(name) {
  readable.push([name, await shoot(name)]);
}

// Alice's API session for the hostile data, taken now: after her binding is revoked she cannot sign in again.
const apiToken = (await api("POST", "/api/v1/auth/login", null, { email: "alice@example.com", password: "plystra-demo" })).access_token;

await check("the sign-in page loads under its Content-Security-Policy", async () => {
  const r = await page.goto(`${BASE}/console/login`);
  const csp = r.headers()["content-security-policy"] || "";
  await visit("sign-in");
  return csp.includes("script-src 'self'") && !csp.includes("unsafe-inline") ? true : csp;
});

await check("Alice signs in and sees her Spaces", async () => {
  await page.getByLabel("E-mail").fill("alice@example.com");
  await page.getByLabel("Password").fill("plystra-demo");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${BASE}/console`);
  await page.getByRole("link", { name: "Acme" }).waitFor();
  await visit("spaces");
  const cookies = await context.cookies(`${BASE}/console`);
  const c = cookies.find((x) => x.name === "plystra_console");
  return c && c.httpOnly && c.sameSite === "Strict" ? true : JSON.stringify(cookies);
});

await check("the group tree folds by path (details without script)", async () => {
  await page.getByRole("link", { name: "Acme" }).click();
  await page.getByRole("heading", { name: /Groups/ }).waitFor();
  const apac = page.locator("#groups").getByText("finance.apac", { exact: true });
  if (!(await apac.isVisible())) return "finance.apac not shown";
  await page.locator("#groups summary", { hasText: "finance" }).first().click();
  const hidden = !(await apac.isVisible());
  await page.locator("#groups summary", { hasText: "finance" }).first().click();
  await visit("space");
  return hidden && (await apac.isVisible()) ? true : "collapsing finance did not hide finance.apac";
});

// Create and edit through the Console's forms (each one API route with the session's token).
await check("a new group under a parent (finance.apac) shows in the tree", async () => {
  await page.getByRole("link", { name: "New group" }).click();
  await page.getByLabel("Parent group").selectOption("group_finance_apac");
  await page.getByLabel(/^Path/).fill("finance.apac.sg");
  await page.getByLabel("Display name").fill("Singapore");
  await visit("new-group");
  await page.getByRole("button", { name: "Create" }).click();
  await page.waitForURL(/#groups$/);
  const apac = page.locator("#groups details", { has: page.locator("summary", { hasText: "finance.apac" }) }).last();
  const t = await apac.innerText();
  return t.includes("finance.apac.sg") && t.includes("Singapore") ? true : t;
});

await check("a refused form shows the API's error and keeps the input", async () => {
  await page.getByRole("link", { name: "New group" }).click();
  await page.getByLabel("Parent group").selectOption("group_finance");
  await page.getByLabel(/^Path/).fill("legal.misplaced");
  await page.getByRole("button", { name: "Create" }).click();
  const alert = await page.getByRole("alert").innerText();
  const kept = await page.getByLabel(/^Path/).inputValue();
  await visit("refused-form");
  await page.getByRole("link", { name: "Overview" }).click();
  return alert.includes("GROUP_PATH_PARENT_MISMATCH") && kept === "legal.misplaced" ? true : `${alert} / ${kept}`;
});

let newGrant = "";
await check("a new grant (Member, role, anchor group) is listed, and its management audit row is on the Audit page", async () => {
  await page.getByRole("link", { name: "New grant (MemberRole)" }).click();
  await page.getByLabel("Member").selectOption("member_invoice_creator");
  await page.getByLabel("Role").selectOption("role_finance_approver");
  await page.getByLabel("Anchor group (optional)").selectOption({ label: "finance.apac.sg — Singapore" });
  await visit("new-grant");
  await page.getByRole("button", { name: "Create" }).click();
  await page.waitForURL(/#grants$/);
  const row = page.locator("#grants tr", { hasText: "finance.apac.sg" }).first();
  const text = await row.innerText();
  newGrant = (await row.locator("td").first().innerText()).trim();
  if (!text.includes("member_invoice_creator") || !newGrant) return text;
  await page.getByRole("link", { name: "Audit" }).click();
  await page.getByLabel("Resource", { exact: true }).fill(newGrant);
  await page.getByRole("button", { name: "Filter" }).click();
  const rows = await page.locator("table").innerText();
  await page.getByRole("link", { name: "Overview" }).click();
  return rows.includes(newGrant) && /member_role\.created|created/.test(rows) ? true : rows;
});

await check("a role's name and description are edited", async () => {
  await page.getByRole("link", { name: "Edit role role_finance_approver" }).click();
  await page.getByLabel("Name").fill("Finance Approver (edited)");
  await page.getByLabel("Description").fill("Approves invoices in its anchor's tree");
  await visit("edit-role");
  await page.getByRole("button", { name: "Save" }).click();
  await page.waitForURL(/#roles$/);
  const t = await page.locator("#roles tr", { hasText: "role_finance_approver" }).first().innerText();
  await page.getByRole("link", { name: "Edit role role_finance_approver" }).click();
  const d = await page.getByLabel("Description").inputValue();
  await page.getByRole("link", { name: "Overview" }).click();
  return t.includes("Finance Approver (edited)") && d === "Approves invoices in its anchor's tree" ? true : `${t} / ${d}`;
});

// Every trace picture fits its container at both widths: nothing clipped, nothing to scroll inside it.
async function tracesFit(where) {
  const problems = [];
  for (const w of [1280, 390]) {
    await page.setViewportSize({ width: w, height: w === 390 ? 844 : 900 });
    const bad = await page.evaluate(() => {
      const out = [];
      const svgs = [...document.querySelectorAll("svg.trace")];
      if (!svgs.length) out.push("no trace picture");
      svgs.forEach((svg, i) => {
        const box = svg.getBoundingClientRect();
        const parent = svg.parentElement;
        const c = parent.getBoundingClientRect();
        if (box.left < c.left - 0.5 || box.right > c.right + 0.5 || box.width < 1) {
          out.push(`picture ${i}: ${Math.round(box.left)}..${Math.round(box.right)} outside ${Math.round(c.left)}..${Math.round(c.right)}`);
        }
        if (parent.scrollWidth > parent.clientWidth + 1) out.push(`picture ${i}: its container scrolls (${parent.scrollWidth} > ${parent.clientWidth})`);
        if (box.right > window.innerWidth + 0.5) out.push(`picture ${i}: past the window's right edge`);
      });
      return out;
    });
    bad.forEach((b) => problems.push(`${where} at ${w}px: ${b}`));
  }
  await page.setViewportSize({ width: 1280, height: 900 });
  return problems.length ? problems.join("; ") : true;
}

await check("Ask draws case 1 (Alice approves invoice_001) as a picture: ALLOW, the grant path highlighted", async () => {
  await page.getByRole("link", { name: "Ask" }).click();
  await page.getByLabel("Actor (binding)").selectOption("user_alice|member_finance_reviewer|um_alice_finance_reviewer");
  await page.getByLabel("Registered resource").selectOption("invoice|invoice_001");
  await page.getByLabel("Action", { exact: true }).fill("approve");
  await page.getByRole("button", { name: "Ask" }).click();
  await page.locator(".verdict").waitFor();
  const verdict = await page.locator(".verdict").innerText();
  const on = await page.locator("svg.trace .node.on").count();
  await visit("ask");
  const download = page.waitForEvent("download");
  await page.getByRole("link", { name: "Download the trace (JSON)" }).click();
  const file = await (await download).path();
  const trace = JSON.parse(readFileSync(file, "utf8"));
  return verdict.startsWith("ALLOW") && on >= 4 && trace.decision === "allow" ? true : `${verdict}; ${on} highlighted; ${trace.decision}`;
});

await check("Ask: the trace picture fits its container at 1280 px and 390 px", () => tracesFit("Ask"));

await check("Ask as another binding (Bob, invoice_002) is simulated: DENY SCOPE_OUT_OF_BOUNDS drawn, no audit row to download", async () => {
  await page.getByRole("link", { name: "Ask" }).click();
  await page.getByLabel("Actor (binding)").selectOption("user_bob|member_finance_reviewer|um_bob_finance_reviewer");
  await page.getByLabel("Registered resource").selectOption("invoice|invoice_002");
  await page.getByLabel("Action", { exact: true }).fill("approve");
  await page.getByRole("button", { name: "Ask" }).click();
  await page.locator(".verdict").waitFor();
  const verdict = await page.locator(".verdict").innerText();
  const simulated = await page.locator("#simulated").innerText();
  const failing = await page.locator("svg.trace .node.fail").count();
  const links = await page.getByRole("link", { name: "Download the trace (JSON)" }).count();
  await visit("ask-simulated");
  const ok = verdict.startsWith("DENY") && verdict.includes("SCOPE_OUT_OF_BOUNDS") && simulated.includes("um_bob_finance_reviewer")
    && failing >= 1 && links === 0;
  return ok ? true : `${verdict}; ${simulated}; ${failing} failed nodes; ${links} download links`;
});

await check("revoking Alice's binding goes through the API (the binding shows revoked)", async () => {
  await page.getByRole("link", { name: "Overview" }).click();
  await page.getByRole("button", { name: "Revoke binding um_alice_finance_reviewer", exact: true }).click();
  await page.waitForURL(/#bindings$/);
  const row = page.locator("#bindings tr", { hasText: "um_alice_finance_reviewer" }).first();
  const text = await row.innerText();
  return text.includes("revoked") ? true : text;
});

await check("the audit log finds case 1's allow; its row draws the decision-time trace", async () => {
  await page.getByRole("link", { name: "Audit" }).click();
  await page.getByLabel("Actor binding").fill("um_alice_finance_reviewer");
  await page.getByLabel("Resource", { exact: true }).fill("invoice_001");
  await page.getByLabel("Decision (allow, deny)").fill("allow");
  await page.getByRole("button", { name: "Filter" }).click();
  await visit("audit");
  await page.getByRole("link", { name: "Open" }).first().click();
  await page.locator("svg.trace").waitFor();
  await visit("audit-row");
  return (await page.locator(".verdict").first().innerText()).startsWith("ALLOW") ? true : "not the allow";
});

await check("Replay: case 1 was an allow then and is USER_MEMBER_REVOKED now, the binding named as what changed", async () => {
  await page.getByRole("button", { name: "Replay against today's data" }).click();
  await page.getByRole("heading", { name: /What changed/ }).waitFor();
  const sides = await page.locator(".side").allInnerTexts();
  const changes = await page.locator("table").last().innerText();
  await visit("replay");
  const ok = sides[0].includes("ALLOW") && sides[1].includes("USER_MEMBER_REVOKED") && /binding\s+um_alice_finance_reviewer/.test(changes);
  return ok ? true : `${sides.join(" | ")} || ${changes}`;
});

await check("Replay: both trace pictures fit their containers at 1280 px and 390 px", () => tracesFit("Replay"));

await check("the failed binding step is marked red with its deny code in the picture", async () => {
  const fail = page.locator(".side").nth(1).locator("svg.trace .node.fail");
  return (await fail.count()) >= 1 && (await fail.first().textContent()).includes("USER_MEMBER_REVOKED") ? true : "no red step";
});

await check("the Space's audit chain verifies intact on demand", async () => {
  await page.getByRole("link", { name: "Audit" }).click();
  await page.getByRole("button", { name: "Verify the chain" }).click();
  await page.locator("#chain-status").waitFor();
  const t = await page.locator("#chain-status").innerText();
  await visit("chain");
  return t.startsWith("INTACT") || t.startsWith("PROBLEM") ? (t.startsWith("INTACT") ? true : t) : t;
});

await check("Who can? lists Bob's binding for approving invoice_001", async () => {
  await page.getByRole("link", { name: "Who can?" }).click();
  await page.getByLabel("Resource", { exact: true }).selectOption("invoice_001");
  await page.getByLabel("Action", { exact: true }).fill("approve");
  await page.getByRole("button", { name: "Look up", exact: true }).click();
  await page.locator("table").first().waitFor();
  const t = await page.locator("table").first().innerText();
  return t.includes("um_bob_finance_reviewer") && !t.includes("um_alice_finance_reviewer\t") ? true : t;
});

await check("what a binding reaches: Bob may approve invoice_001, not invoice_002", async () => {
  await page.getByLabel("Binding", { exact: true }).selectOption("um_bob_finance_reviewer");
  await page.getByLabel("Resource type to reach").fill("invoice");
  await page.getByLabel("Action to reach").fill("approve");
  await page.getByRole("button", { name: "Look up what it reaches" }).click();
  await page.getByRole("heading", { name: /What um_bob_finance_reviewer may approve/ }).waitFor();
  await visit("who-can");
  const t = await page.locator("table").last().innerText();
  return t.includes("invoice_001") && !t.includes("invoice_002") ? true : t;
});

await check("instance events list logins", async () => {
  await page.goto(`${BASE}/console/events?resource_type=user`);
  await page.getByRole("heading", { name: "Instance events" }).waitFor();
  const t = await page.locator("table").innerText();
  await visit("events");
  return t.includes("auth.login") ? true : t.slice(0, 500);
});

// Hostile names: they must render as text, run nothing and load nothing.
const hostile = ["<script>alert(1)</script>", "\"><img src=x onerror=alert(1)>"];
const longName = "L".repeat(3000);
const rtl = "\u202Eمرحبا بالعالم עולם\u202C";
await check("hostile Spaces, groups, members and metadata render inert", async () => {
  const t = apiToken;
  const sid = `space_xss_${Date.now()}`;
  await api("POST", "/api/v1/spaces", t, { id: sid, name: hostile[0], slug: sid.replace(/_/g, "-") });
  const ops = await api("POST", `/api/v1/spaces/${sid}/groups`, t, { path: "ops", display_name: hostile[1] });
  await api("POST", `/api/v1/spaces/${sid}/groups`, t, { path: "ops.long", display_name: longName, parent_group_id: ops.id });
  await api("POST", `/api/v1/spaces/${sid}/groups`, t, { path: "ops.rtl", display_name: rtl, parent_group_id: ops.id });
  await api("POST", `/api/v1/spaces/${sid}/members`, t, { display_name: hostile[1], metadata: { note: hostile[0], rtl } });
  await api("POST", `/api/v1/spaces/${sid}/members`, t, { display_name: longName });
  await page.goto(`${BASE}/console`);
  const listText = await page.locator("main").innerText();
  await visit("xss-spaces");
  await page.goto(`${BASE}/console/spaces/${sid}`);
  await page.getByRole("heading", { name: /Groups/ }).waitFor();
  const body = await page.locator("main").innerText();
  await visit("xss-space");
  const images = await page.locator("img").count();
  const scripts = await page.locator("script").count(); // only the Console's own file
  const problems = [];
  if (!listText.includes(hostile[0])) problems.push("the Space's name is not shown literally");
  if (!body.includes(hostile[1])) problems.push("the group's name is not shown literally");
  if (!body.includes("LLLLLLLLLL")) problems.push("the long name is not shown");
  if (!body.includes("مرحبا")) problems.push("the right-to-left name is not shown");
  if (images !== 0) problems.push(`${images} img elements`);
  if (scripts !== 1) problems.push(`${scripts} script elements`);
  return problems.length ? problems.join("; ") : true;
});

await check("no dialog fired on any page (the revoke's confirm aside)", () => (alerts.length ? alerts.join("; ") : true));
await check("the Console's own assets break no Content-Security-Policy rule", () => (cspErrors.length ? cspErrors.join("; ") : true));
for (const [name, result] of readable) {
  await check(`${name}: readable at 1280 px and 390 px (no sideways page scroll)`, () => result);
}
for (const { name, bad } of axeResults) {
  await check(`${name}: axe-core finds no serious or critical violation`, () =>
    bad.length ? bad.map((v) => `${v.impact} ${v.id} (${v.nodes}): ${v.help}`).join("; ") : true);
}

await check("signing out ends the session (the Console asks to sign in again)", async () => {
  await page.goto(`${BASE}/console`);
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(/\/console\/login/);
  await page.goto(`${BASE}/console`);
  return page.url().includes("/console/login") ? true : page.url();
});

await context.close();
console.log(`1..${n}`);
process.exit(failed ? 1 : 0);
