// learnpulse dashboard. Plain JavaScript, no framework and no build step: every view reads the
// JSON API with the session cookie and renders with the DOM. Views are chosen by the URL's hash
// (#/class/<group>, #/learner/<id>, #/interventions/<group>, #/dpo, #/ops), so the browser's
// back button and bookmarks work. Text from the server is always set as text, never as HTML.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);

/** Creates an element: el("td", {class: "x"}, "text", child, ...). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    // Through the CSSOM: the page's CSP allows no inline style attributes.
    else if (k === "style") node.style.cssText = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

/** Replaces `node`'s children, skipping the null and undefined that conditional parts give. */
function fill(node, ...children) {
  node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
}

const svgNS = "http://www.w3.org/2000/svg";
function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(svgNS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

let session = null;

/** GET or POST the API; a 401 sends the browser to the sign-in page. */
async function api(path, options = {}) {
  const headers = { accept: "application/json" };
  if (options.body !== undefined) headers["content-type"] = "application/json";
  if (options.method && options.method !== "GET") headers["x-csrf-token"] = session ? session.csrf : "";
  const r = await fetch(path, {
    method: options.method || "GET",
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    credentials: "same-origin",
  });
  if (r.status === 401) {
    location.href = "/ui/sign-in#ended";
    throw new Error("signed out");
  }
  const text = await r.text();
  const body = text ? (r.headers.get("content-type") || "").includes("json") ? JSON.parse(text) : text : null;
  if (!r.ok) {
    const detail = body && body.detail ? body.detail : r.statusText;
    throw new Error(`${r.status}: ${detail}`);
  }
  return body;
}

// ---- words ----------------------------------------------------------------------------------

function shortId(p) {
  return p.length > 14 ? `${p.slice(0, 11)}…` : p;
}

/** The learner as this viewer may name them: their name for the teacher of record, else the pseudonym. */
function nameOf(row) {
  return row.display_name || shortId(row.learner);
}

function riskLevel(score) {
  return score >= 0.6 ? "high" : score >= 0.3 ? "mid" : "low";
}

function riskBadge(score) {
  const level = riskLevel(score);
  const word = { high: "needs help", mid: "watch", low: "on track" }[level];
  return el("span", { class: `badge ${level}` }, `${word} (${Math.round(score * 100)} %)`);
}

function ago(ms) {
  if (!ms) return "never";
  const s = Math.max(0, (Date.now() - ms) / 1000);
  if (s < 90) return "just now";
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 129600) return `${Math.round(s / 3600)} h ago`;
  return new Date(ms).toLocaleDateString();
}

function meter(p, label) {
  const pct = Math.round(p * 100);
  return el("span", { class: "meter", role: "img", "aria-label": `${label}: ${pct} % mastery` },
    el("span", { style: `width:${pct}%` }));
}

// ---- live connection ------------------------------------------------------------------------

let stream = null;

/** Follows the SSE stream of `group` (all the key may see when absent). The browser resumes it
 *  with Last-Event-ID after a drop; the header shows whether it is connected. */
function follow(group, handlers) {
  if (stream) stream.close();
  const live = $("#live");
  const url = group ? `/v1/stream?group=${encodeURIComponent(group)}` : "/v1/stream";
  stream = new EventSource(url, { withCredentials: true });
  live.className = "live off";
  live.textContent = "Connecting…";
  stream.onopen = () => { live.className = "live on"; live.textContent = "Live"; };
  stream.onerror = () => { live.className = "live off"; live.textContent = "Connection lost, reconnecting…"; };
  for (const [name, fn] of Object.entries(handlers)) {
    stream.addEventListener(name, (e) => fn(JSON.parse(e.data)));
  }
}

function stopFollowing() {
  if (stream) stream.close();
  stream = null;
  $("#live").textContent = "";
  $("#live").className = "live";
}

// ---- class view -----------------------------------------------------------------------------

function groupPicker(current, target) {
  const groups = session.groups;
  if (groups.length <= 1) return null;
  const select = el("select", { id: "group", onchange: (e) => { location.hash = `#/${target}/${encodeURIComponent(e.target.value)}`; } },
    groups.map((g) => el("option", { value: g, selected: g === current }, g)));
  return el("p", {}, el("label", { for: "group" }, "Class "), select);
}

function learnerRow(row) {
  const skills = Object.entries(row.mastery || {}).sort();
  return el("tr", { class: "learner", "data-learner": row.learner },
    el("th", { scope: "row" }, el("a", { href: `#/learner/${encodeURIComponent(row.learner)}` }, nameOf(row))),
    el("td", {}, riskBadge(row.risk),
      row.risk_reasons && row.risk_reasons.length ? el("ul", { class: "reasons" }, row.risk_reasons.map((r) => el("li", {}, r))) : null,
      row.wheel_spinning_skills && row.wheel_spinning_skills.length
        ? el("div", { class: "small" }, `stuck on ${row.wheel_spinning_skills.join(", ")}`) : null),
    session.cognitive_data ? el("td", {}, row.load_level || "–") : null,
    el("td", { class: "wide" }, el("div", { class: "skills" },
      skills.length ? skills.map(([k, p]) => el("span", { class: "skill" }, k, meter(p, k))) : el("span", { class: "muted" }, "no scored answers"))),
    el("td", {}, `${row.answers} answers, ${Math.round(row.accuracy * 100)} % right`),
    el("td", {}, ago(row.last_event_ms)));
}

/** A row from a stream update (the learner's whole state), keeping what the overview gave. */
function rowFromState(state, old) {
  return {
    learner: state.learner,
    display_name: old ? old.display_name : undefined,
    answers: state.answers,
    accuracy: state.answers ? state.correct / state.answers : 0,
    risk: state.risk.score,
    risk_reasons: state.risk.reasons || [],
    load_level: state.load ? state.load.level.toLowerCase() : undefined,
    mastery: Object.fromEntries(Object.entries(state.skills).map(([k, s]) => [k, s.mastery])),
    wheel_spinning_skills: Object.entries(state.skills).filter(([, s]) => s.wheel_spinning).map(([k]) => k),
    last_event_ms: state.last_event_ms,
  };
}

async function classView(group) {
  const main = $("#main");
  if (!group) {
    if (!session.groups.length) {
      fill(main, el("h1", {}, "Your classes"), el("p", {}, "No learner has been seen in a class yet."));
      return;
    }
    location.replace(`#/class/${encodeURIComponent(session.groups[0])}`);
    return;
  }
  let rows = new Map();
  const body = el("tbody");
  const render = (changed) => {
    const sorted = [...rows.values()].sort((a, b) => b.risk - a.risk || a.learner.localeCompare(b.learner));
    fill(body, ...sorted.map((r) => {
      const tr = learnerRow(r);
      if (r.learner === changed) tr.classList.add("changed");
      return tr;
    }));
  };
  const load = async () => {
    try {
      const overview = await api(`/v1/groups/${encodeURIComponent(group)}/overview`);
      rows = new Map(overview.learners.map((r) => [r.learner, r]));
    } catch (e) {
      if (!String(e.message).startsWith("404")) throw e;
      rows = new Map();
    }
    render();
  };
  fill(main, 
    el("h1", {}, `Class ${group}`),
    groupPicker(group, "class"),
    el("p", { class: "small" }, "Who needs help now comes first. Rows update as answers arrive."),
    el("table", {},
      el("caption", { class: "small" }, `Learners of ${group}, most at risk first`),
      el("thead", {}, el("tr", {},
        el("th", { scope: "col" }, "Learner"), el("th", { scope: "col" }, "Needs help?"),
        session.cognitive_data ? el("th", { scope: "col" }, "Load") : null,
        el("th", { scope: "col", class: "wide" }, "Mastery per skill"),
        el("th", { scope: "col" }, "Answers"), el("th", { scope: "col" }, "Last seen"))),
      body),
    el("h2", {}, "Latest interventions"),
    el("ul", { class: "feed", id: "class-feed" }));
  await load();
  await fillFeed($("#class-feed"), group, 5);
  follow(group, {
    learner: (data) => {
      const old = rows.get(data.state.learner);
      if (!old) { load(); return; }
      rows.set(data.state.learner, rowFromState(data.state, old));
      render(data.state.learner);
    },
    intervention: () => fillFeed($("#class-feed"), group, 5),
  });
}

// ---- interventions --------------------------------------------------------------------------

const RESPONSES = [["acknowledged", "Acknowledge"], ["went_over", "I went over it"], ["dismissed", "Dismiss"]];
const RESPONSE_WORDS = { acknowledged: "acknowledged", went_over: "went over it with the learner", dismissed: "dismissed" };

function decisionItem(d, onChange) {
  const who = d.display_name || shortId(d.learner);
  const actions = d.teacher_response
    ? el("p", { class: "small" }, `You ${RESPONSE_WORDS[d.teacher_response] || d.teacher_response}.`)
    : el("div", { class: "actions" }, RESPONSES.map(([value, label]) =>
      el("button", { type: "button", class: "quiet", "aria-label": `${label}: ${d.message} (${who})`,
        onclick: async (e) => {
          e.target.disabled = true;
          try {
            await api(`/v1/interventions/${d.seq}/response`, { method: "POST", body: { response: value } });
            onChange();
          } catch (err) { e.target.disabled = false; alert(err.message); }
        } }, label)));
  return el("li", { "data-seq": d.seq },
    el("strong", {}, d.intervention.replace(/_/g, " ")), " for ",
    el("a", { href: `#/learner/${encodeURIComponent(d.learner)}` }, who),
    `: ${d.message}`,
    d.reasons && d.reasons.length ? el("ul", { class: "reasons" }, d.reasons.map((r) => el("li", {}, r))) : null,
    el("div", { class: "small" }, `${ago(d.at_ms)} · policy ${d.policy}${d.skill ? ` · ${d.skill}` : ""}`),
    actions);
}

async function fillFeed(list, group, limit) {
  const q = new URLSearchParams({ limit: String(limit) });
  if (group) q.set("group", group);
  const decisions = await api(`/v1/interventions?${q}`);
  fill(list, ...(decisions.length
    ? decisions.map((d) => decisionItem(d, () => fillFeed(list, group, limit)))
    : [el("li", { class: "muted" }, "No intervention yet.")]));
}

async function interventionsView(group) {
  if (!group && session.groups.length) {
    location.replace(`#/interventions/${encodeURIComponent(session.groups[0])}`);
    return;
  }
  const list = el("ul", { class: "feed", id: "feed" });
  fill($("#main"), el("h1", {}, group ? `Interventions in ${group}` : "Interventions"),
    group ? groupPicker(group, "interventions") : null,
    el("p", { class: "small" }, "What the policies decided, newest first. Your answer is recorded with the decision."),
    list);
  await fillFeed(list, group, 50);
  follow(group, { intervention: () => fillFeed(list, group, 50) });
}

// ---- learner drill-down ---------------------------------------------------------------------

const COLOURS = ["#0b5cad", "#a3161b", "#1d6b37", "#7a4b00", "#5b2a86", "#00666b", "#8a2c5c", "#3d4a57"];

/** Lines of mastery per skill (and load, when present) over the learner's answers, as SVG. */
function chart(points, skills, cognitive) {
  const W = 720, H = 220, L = 36, R = 10, T = 10, B = 24;
  const n = Math.max(points.length - 1, 1);
  const x = (i) => L + ((W - L - R) * i) / n;
  const y = (v) => T + (H - T - B) * (1 - v);
  const g = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img",
    "aria-label": `Mastery per skill${cognitive ? " and load" : ""} over ${points.length} answers` });
  for (const v of [0, 0.5, 1]) {
    g.append(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#d0d7de" }));
    g.append(svg("text", { x: 4, y: y(v) + 4 }, `${v * 100} %`));
  }
  g.append(svg("text", { x: L, y: H - 6 }, "first answer"));
  g.append(svg("text", { x: W - R - 60, y: H - 6 }, "latest"));
  skills.forEach((skill, k) => {
    let last = null; let d = "";
    points.forEach((p, i) => {
      if (p.mastery[skill] !== undefined) last = p.mastery[skill];
      if (last !== null) d += `${d ? "L" : "M"}${x(i).toFixed(1)},${y(last).toFixed(1)}`;
    });
    if (d) g.append(svg("path", { d, fill: "none", stroke: COLOURS[k % COLOURS.length], "stroke-width": 2 }));
  });
  if (cognitive) {
    const d = points.map((p, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(p.load_index || 0).toFixed(1)}`).join("");
    g.append(svg("path", { d, fill: "none", stroke: "#4d5660", "stroke-width": 1.5, "stroke-dasharray": "4 3" }));
  }
  return g;
}

async function learnerView(id) {
  const main = $("#main");
  const [state, timeline] = await Promise.all([
    api(`/v1/learners/${encodeURIComponent(id)}`),
    api(`/v1/learners/${encodeURIComponent(id)}/timeline`),
  ]);
  const name = state.display_name || shortId(state.learner);
  const skills = Object.keys(state.skills).sort();
  const cognitive = session.cognitive_data && state.load !== undefined;
  const last = timeline.points.slice(-10).reverse();
  fill(main, 
    el("p", {}, el("a", { href: "#/class" }, "← Class view")),
    el("h1", {}, name),
    el("p", {}, riskBadge(state.risk.score), " ",
      `${state.answers} answers, ${state.answers ? Math.round((100 * state.correct) / state.answers) : 0} % right, last seen ${ago(state.last_event_ms)}`),
    state.risk.reasons && state.risk.reasons.length ? el("ul", { class: "reasons" }, state.risk.reasons.map((r) => el("li", {}, r))) : null,
    el("h2", {}, "Mastery over time"),
    timeline.points.length ? chart(timeline.points, skills, cognitive) : el("p", { class: "muted" }, "No answers yet."),
    el("div", { class: "legend" }, skills.map((s, k) => el("span", {}, el("i", { style: `background:${COLOURS[k % COLOURS.length]}` }), s)),
      cognitive ? el("span", {}, el("i", { style: "background:#4d5660" }), "load (dashed)") : null),
    el("table", {}, el("caption", { class: "small" }, "Mastery now"),
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Skill"), el("th", { scope: "col" }, "Mastery"), el("th", { scope: "col" }, "Answers"), el("th", { scope: "col" }, "State"))),
      el("tbody", {}, skills.map((k) => {
        const s = state.skills[k];
        return el("tr", {}, el("th", { scope: "row" }, k), el("td", {}, meter(s.mastery, k), ` ${Math.round(s.mastery * 100)} %`),
          el("td", {}, `${s.correct} of ${s.attempts} right`),
          el("td", {}, s.mastered ? "mastered" : s.wheel_spinning ? "stuck (wheel-spinning)" : "learning"));
      }))),
    cognitive ? el("h2", {}, "Load, latest answers first") : null,
    cognitive ? el("table", {}, el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "When"), el("th", { scope: "col" }, "Item"), el("th", { scope: "col" }, "Answer"), el("th", { scope: "col" }, "Load"), el("th", { scope: "col" }, "Why"))),
      el("tbody", {}, last.map((p) => el("tr", {}, el("td", {}, ago(p.at_ms)), el("td", {}, p.item.split("/").pop()),
        el("td", {}, p.correct === null ? "–" : p.correct ? "right" : "wrong"), el("td", {}, p.load_level),
        el("td", {}, p.load_signals.length ? p.load_signals.join("; ") : "–"))))) : null,
    el("h2", {}, "Interventions and what followed"),
    el("ul", { class: "feed" }, timeline.interventions.length ? timeline.interventions.map((d) =>
      el("li", {}, el("strong", {}, d.intervention.replace(/_/g, " ")), `: ${d.message} (${ago(d.at_ms)})`,
        el("div", { class: "small" }, d.followed_by.answers
          ? `then ${d.followed_by.correct} of ${d.followed_by.answers} answers right`
          : "no answer since",
        d.teacher_response ? ` · you ${RESPONSE_WORDS[d.teacher_response]}` : ""))) : [el("li", { class: "muted" }, "None.")]));
  follow(null, {
    learner: (data) => { if (data.state.learner === state.learner) learnerView(id); },
  });
}

// ---- DPO and operator views -----------------------------------------------------------------

async function dpoView() {
  stopFollowing();
  const [report, requests] = await Promise.all([
    api("/v1/compliance/report"),
    api("/v1/compliance/requests").catch(() => []),
  ]);
  const chain = report.state.audit_chain || {};
  const card = (label, value, note) => el("div", { class: "card" }, el("div", { class: "small" }, label),
    el("div", { class: "figure" }, value), note ? el("div", { class: "small" }, note) : null);
  const date = (us) => new Date(us / 1000).toLocaleString();
  fill($("#main"),
    el("h1", {}, "Compliance"),
    el("div", { class: "cards" },
      card("Score", `${Math.round(report.score)} / 100`, report.score_formula),
      card("Audit chain", chain.verified ? "intact" : "BROKEN",
        chain.verified ? `${chain.entries} entries verified` : `first broken entry ${chain.first_broken_entry}: ${chain.reason}`),
      card("Open incidents", report.incidents.length),
      card("Open subject requests", requests.filter((r) => !r.completed_us).length)),
    el("h2", {}, "Findings"),
    report.findings.length ? el("ul", { class: "feed" }, report.findings.map((f) => el("li", {},
      el("strong", {}, f.title), ` (${f.provision}, ${f.severity}): ${f.evidence}`,
      el("div", { class: "small" }, `What to do: ${f.remediation}`)))) : el("p", { class: "muted" }, "No rule fails."),
    el("h2", {}, "Rules"),
    el("table", {}, el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Rule"), el("th", { scope: "col" }, "Provision"), el("th", { scope: "col" }, "Status"))),
      el("tbody", {}, report.rules.map((r) => el("tr", {}, el("th", { scope: "row" }, r.title),
        el("td", {}, r.provision),
        el("td", {}, el("span", { class: `badge ${r.status === "pass" ? "low" : r.status === "off" ? "mid" : "high"}` }, r.status)))))),
    el("h2", {}, "Subject requests"),
    requests.length ? el("table", {}, el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Kind"), el("th", { scope: "col" }, "Received"), el("th", { scope: "col" }, "Deadline"), el("th", { scope: "col" }, "Answered"))),
      el("tbody", {}, requests.map((r) => el("tr", {}, el("td", {}, r.kind), el("td", {}, date(r.received_us)),
        el("td", {}, date(r.deadline_us)), el("td", {}, r.completed_us ? date(r.completed_us) : "open")))))
      : el("p", { class: "muted" }, "None."));
}

/** The value of a Prometheus metric in the text exposition (summed over its labels). */
function metric(text, name) {
  let sum = null;
  for (const line of text.split("\n")) {
    if (line.startsWith(name) && (line[name.length] === " " || line[name.length] === "{")) {
      sum = (sum || 0) + Number(line.slice(line.lastIndexOf(" ") + 1));
    }
  }
  return sum;
}

async function opsView() {
  stopFollowing();
  const main = $("#main");
  let previous = null;
  const cards = el("div", { class: "cards" });
  fill(main, el("h1", {}, "Operations"), el("p", { class: "small" }, "From /healthz, /readyz and /metrics, every five seconds."), cards);
  const tick = async () => {
    if (!document.body.contains(cards)) return;
    const [ready, text] = await Promise.all([
      fetch("/readyz").then((r) => r.json()),
      fetch("/metrics").then((r) => r.text()),
    ]);
    const now = Date.now();
    const statements = metric(text, "learnpulse_statements_ingested_total") ?? 0;
    const rate = previous ? ((statements - previous.statements) * 1000) / (now - previous.at) : null;
    previous = { statements, at: now };
    const card = (label, value, note) => el("div", { class: "card" }, el("div", { class: "small" }, label), el("div", { class: "figure" }, value), note ? el("div", { class: "small" }, note) : null);
    const mean = (base) => {
      const s = metric(text, `${base}_sum`), c = metric(text, `${base}_count`);
      return s !== null && c ? `${((1e6 * s) / c).toFixed(1)} µs` : "–";
    };
    fill(cards, 
      card("Ready", ready.status, ready.reason || `leads: ${(ready.leads || []).join(", ") || "none"}`),
      card("Learners in memory", ready.learners_in_memory),
      card("Ingest", rate === null ? "…" : `${Math.round(rate)} /s`, `${statements} statements since start`),
      card("Privacy pipeline per statement, mean", mean("learnpulse_privacy_pipeline_seconds")),
      card("Engine update per event, mean", mean("learnpulse_engine_update_seconds")),
      card("Commit, mean", mean("learnpulse_commit_seconds")),
      card("Stream subscribers", metric(text, "learnpulse_stream_subscribers") ?? 0));
    setTimeout(tick, 5000);
  };
  await tick();
}

// ---- frame ----------------------------------------------------------------------------------

const VIEWS = [
  { id: "class", label: "Class", roles: ["admin", "teacher", "tutor", "dpo"], show: classView },
  { id: "interventions", label: "Interventions", roles: ["admin", "teacher", "tutor", "dpo"], show: interventionsView },
  { id: "dpo", label: "Compliance", roles: ["admin", "dpo"], show: dpoView },
  { id: "ops", label: "Operations", roles: ["admin"], show: opsView },
  { id: "learner", label: null, roles: ["admin", "teacher", "tutor", "dpo"], show: learnerView },
];

async function route() {
  const [, view, arg] = location.hash.split("/");
  const allowed = VIEWS.filter((v) => v.roles.includes(session.role));
  const chosen = allowed.find((v) => v.id === view) || allowed[0];
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.dataset.view === chosen?.id) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const main = $("#main");
  if (!chosen) {
    fill(main, el("h1", {}, "Nothing to show"), el("p", {}, `The role ${session.role} has no dashboard view. Researchers use the analytics API.`));
    return;
  }
  try {
    await chosen.show(arg ? decodeURIComponent(arg) : undefined);
    main.focus({ preventScroll: true });
  } catch (e) {
    fill(main, el("h1", {}, "Something went wrong"), el("p", { class: "problem", role: "alert" }, e.message));
  }
}

async function start() {
  if (document.body.classList.contains("sign-in")) {
    const why = { "#refused": "That key was not accepted.", "#expired": "That sign-in link has expired or was used already.", "#ended": "Your session has ended. Sign in again." }[location.hash];
    if (why) { const p = $("#sign-in-problem"); p.textContent = why; p.hidden = false; }
    return;
  }
  try {
    session = await api("/ui/session");
  } catch {
    return; // not signed in: api() is on its way to the sign-in page
  }
  $("#who").textContent = `${session.role} · ${session.scoped ? session.groups.join(", ") : "whole school"}`;
  fill($("#nav"), ...VIEWS.filter((v) => v.label && v.roles.includes(session.role))
    .map((v) => el("a", { href: `#/${v.id}`, "data-view": v.id }, v.label)));
  $("#sign-out").addEventListener("click", async () => {
    await api("/ui/sign-out", { method: "POST" });
    location.href = "/ui/sign-in";
  });
  window.addEventListener("hashchange", route);
  await route();
}

start();
