// The Viz dashboard (keras_vizcallbacks): every epoch of the views on one slider.
//
// TensorBoard loads this ES module in an iframe whose base URL is data/plugin/keras_viz/ and
// calls render(). Plain JavaScript, no dependencies. The routes it uses are described in
// keras_vizcallbacks/dashboard/plugin.py.

const STORE_KEY = 'keras_viz.dashboard.v1';
const POLL_MS = 4000; // new epochs of the shown runs
const RUNS_POLL_MS = 15000; // new runs
const SPEEDS = [0.5, 1, 2, 4, 8, 16];
const SIZES = {S: 220, M: 320, L: 460, XL: 640}; // panel widths in CSS pixels
// Views in the order a network is read: weights, activations, attributions, outcomes.
const VIEW_ORDER = [
  'filters', 'feature_maps', 'activation_maximization', 'top_activations', 'grad_cam',
  'saliency', 'decision_boundary', 'confusion_matrix',
];
const ANIMATIONS = '\u2009animations'; // the group of GIF tags (sorts last, cannot clash with a view)

const state = {
  run: null,
  compare: '', // a second run shown beside the first, or ''
  epoch: null, // the selected step
  speed: 2, // epochs per second while playing
  loop: true,
  size: 'M',
  collapsed: {}, // view -> true
  follow: true, // at the last epoch: move on when new epochs arrive
};
let runs = {}; // run -> [tags]
let listedRuns = null; // the run names the selects were filled with
const infos = {}; // run -> {generation, tags: {tag: {view, description, animated, steps, wall_times}}}
let timeline = []; // sorted union of the shown runs' steps
let playing = null; // timer id while playing
let pending = 0; // images being loaded for the current frame
let modal = null; // {run, tag} shown large, or null
let els = {};
let shownLayout = null; // what the panels were built for

export async function render() {
  load();
  document.title = 'Viz';
  const css = document.createElement('link');
  css.rel = 'stylesheet';
  css.href = './style.css';
  document.head.appendChild(css);
  buildShell();
  document.addEventListener('keydown', onKey);
  listenToParentKeys();
  await refreshRuns();
  setInterval(poll, POLL_MS);
  setInterval(refreshRuns, RUNS_POLL_MS);
}

// ------------------------------------------------------------------ state

function load() {
  let saved = {};
  try {
    saved = JSON.parse(localStorage.getItem(STORE_KEY) || '{}') || {};
  } catch (e) {
    // a corrupt entry: start from the defaults
  }
  if (typeof saved.run === 'string') state.run = saved.run;
  if (typeof saved.epoch === 'number') state.epoch = saved.epoch;
  for (const key of ['compare', 'speed', 'loop', 'size', 'collapsed', 'follow']) {
    if (typeof saved[key] === typeof state[key] && saved[key] !== null) state[key] = saved[key];
  }
  if (!SPEEDS.includes(state.speed)) state.speed = 2;
  if (!(state.size in SIZES)) state.size = 'M';
}

function save() {
  try {
    localStorage.setItem(STORE_KEY, JSON.stringify(state));
  } catch (e) {
    // storage disabled: the state lasts for this page only
  }
}

// ------------------------------------------------------------------ data

async function getJSON(url) {
  const response = await fetch(url, {cache: 'no-store'});
  if (!response.ok) throw new Error(`${url}: ${response.status} ${(await response.text()).trim()}`);
  return response.json();
}

function query(params) {
  return new URLSearchParams(params).toString();
}

async function refreshRuns() {
  try {
    runs = await getJSON('./runs');
    setStatus('');
  } catch (e) {
    setStatus(`Cannot reach TensorBoard (${e.message}); retrying.`);
    return;
  }
  const names = Object.keys(runs);
  const before = JSON.stringify([listedRuns, state.run, state.compare]);
  if (!names.includes(state.run)) state.run = names.length ? names[0] : null;
  if (state.compare && (!names.includes(state.compare) || state.compare === state.run)) state.compare = '';
  listedRuns = names;
  if (JSON.stringify([listedRuns, state.run, state.compare]) === before) return; // the poll keeps the rest fresh
  fillRunSelects();
  await loadShown(true);
}

function shownRuns() {
  return [state.run, state.compare].filter((r) => r);
}

async function loadShown(force) {
  let changed = false;
  for (const run of shownRuns()) {
    const have = infos[run];
    const since = have && !force ? '&' + query({since: have.generation}) : '';
    try {
      const info = await getJSON('./tags?' + query({run}) + since);
      if (!info.unchanged) {
        infos[run] = info;
        changed = true;
      }
    } catch (e) {
      setStatus(`Cannot read run ${run} (${e.message}); retrying.`);
    }
  }
  if (changed || force) rebuild();
}

async function poll() {
  const before = timeline.length ? timeline[timeline.length - 1] : null;
  const atEnd = state.epoch === before;
  await loadShown(false);
  if (state.follow && atEnd && !playing && timeline.length && timeline[timeline.length - 1] !== before) {
    setEpoch(timeline[timeline.length - 1]);
  }
}

// ------------------------------------------------------------------ shell

function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === 'text') node.textContent = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (value !== null && value !== undefined && value !== false) node.setAttribute(key, value === true ? '' : value);
  }
  for (const child of [].concat(children)) if (child) node.appendChild(child);
  return node;
}

function buildShell() {
  els.run = el('select', {id: 'run', title: 'Run', onchange: () => {
    state.run = els.run.value;
    if (state.compare === state.run) state.compare = '';
    fillRunSelects();
    save();
    loadShown(true);
  }});
  els.compare = el('select', {id: 'compare', title: 'Show a second run beside the first', onchange: () => {
    state.compare = els.compare.value;
    save();
    loadShown(true);
  }});
  els.first = el('button', {id: 'first', class: 'icon', title: 'First epoch (Home)', onclick: () => moveTo(0)}, icon('first'));
  els.prev = el('button', {id: 'prev', class: 'icon', title: 'Previous epoch (\u2190)', onclick: () => step(-1)}, icon('prev'));
  els.play = el('button', {id: 'play', class: 'play', title: 'Play / pause (space)', onclick: togglePlay});
  els.next = el('button', {id: 'next', class: 'icon', title: 'Next epoch (\u2192)', onclick: () => step(1)}, icon('next'));
  els.last = el('button', {id: 'last', class: 'icon', title: 'Last epoch (End)', onclick: () => moveTo(timeline.length - 1)}, icon('last'));
  setPlayButton(false);
  els.slider = el('input', {id: 'epoch', type: 'range', min: 0, max: 0, value: 0, step: 1, 'aria-label': 'Epoch',
    oninput: () => moveTo(Number(els.slider.value))});
  els.epochLabel = el('span', {id: 'epoch-label', class: 'epoch-label'});
  els.range = el('span', {id: 'epoch-range', class: 'muted'});
  els.speed = el('select', {id: 'speed', title: 'Playback speed', onchange: () => {
    state.speed = Number(els.speed.value);
    save();
  }}, SPEEDS.map((s) => el('option', {value: s, text: `${s} epoch${s === 1 ? '' : 's'}/s`})));
  els.loop = el('input', {id: 'loop', type: 'checkbox', onchange: () => {
    state.loop = els.loop.checked;
    save();
  }});
  els.size = el('select', {id: 'size', title: 'Panel size', onchange: () => {
    state.size = els.size.value;
    save();
    applySize();
  }}, Object.keys(SIZES).map((s) => el('option', {value: s, text: {S: 'small', M: 'medium', L: 'large', XL: 'x-large'}[s]})));
  els.status = el('div', {id: 'status', class: 'status'});
  els.grid = el('main', {id: 'grid'});

  const bar = el('header', {class: 'bar'}, [
    el('div', {class: 'row'}, [
      el('label', {class: 'field'}, [el('span', {text: 'Run'}), els.run]),
      el('label', {class: 'field'}, [el('span', {text: 'Compare with'}), els.compare]),
      el('span', {class: 'spacer'}),
      el('label', {class: 'field'}, [el('span', {text: 'Speed'}), els.speed]),
      el('label', {class: 'field check', title: 'Start over at the end'}, [els.loop, el('span', {text: 'Loop'})]),
      el('label', {class: 'field'}, [el('span', {text: 'Panels'}), els.size]),
    ]),
    el('div', {class: 'row transport'}, [
      els.first, els.prev, els.play, els.next, els.last,
      els.slider,
      el('div', {class: 'readout'}, [els.epochLabel, els.range]),
    ]),
  ]);
  els.modal = el('div', {id: 'modal', class: 'modal', hidden: true, onclick: (e) => {
    if (e.target === els.modal) closeModal();
  }});
  document.body.append(bar, els.status, els.grid, els.modal);
  els.speed.value = String(state.speed);
  els.loop.checked = state.loop;
  els.size.value = state.size;
  applySize();
}

const ICONS = {
  first: 'M6 5h2v14H6zM19 5v14L9 12z',
  prev: 'M17 5v14L6 12z',
  next: 'M7 5v14l11-7z',
  last: 'M16 5h2v14h-2zM5 5v14l10-7z',
  play: 'M7 5v14l12-7z',
  pause: 'M6 5h4v14H6zM14 5h4v14h-4z',
  close: 'M6.4 5 5 6.4 10.6 12 5 17.6 6.4 19l5.6-5.6 5.6 5.6 1.4-1.4-5.6-5.6L19 6.4 17.6 5 12 10.6z',
};

function icon(name) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  const path = document.createElementNS(ns, 'path');
  path.setAttribute('d', ICONS[name]);
  svg.appendChild(path);
  return svg;
}

function setPlayButton(on) {
  els.play.replaceChildren(icon(on ? 'pause' : 'play'), el('span', {text: on ? 'Pause' : 'Play'}));
  els.play.classList.toggle('on', on);
  els.play.setAttribute('aria-pressed', on ? 'true' : 'false');
}

function applySize() {
  document.documentElement.style.setProperty('--panel', `${SIZES[state.size]}px`);
}

function fillRunSelects() {
  const names = Object.keys(runs);
  els.run.replaceChildren(...names.map((r) => el('option', {value: r, text: r})));
  els.compare.replaceChildren(el('option', {value: '', text: '(none)'}),
    ...names.filter((r) => r !== state.run).map((r) => el('option', {value: r, text: r})));
  if (state.run) els.run.value = state.run;
  els.compare.value = state.compare;
  els.compare.disabled = names.length < 2;
}

function setStatus(text) {
  els.status.textContent = text;
  els.status.hidden = !text;
}

// ------------------------------------------------------------------ layout

function tagsShown() {
  // tag -> view, over the shown runs; animated tags (GIFs) form their own group at the end
  const tags = new Map();
  for (const run of shownRuns()) {
    const info = infos[run];
    if (!info) continue;
    for (const [tag, t] of Object.entries(info.tags)) {
      if (!tags.has(tag)) tags.set(tag, t.animated ? ANIMATIONS : t.view);
    }
  }
  return tags;
}

function groupRank(view) {
  if (view === ANIMATIONS) return [2, view];
  const i = VIEW_ORDER.indexOf(view);
  return i >= 0 ? [0, String(i).padStart(3, '0')] : [1, view];
}

function rebuild() {
  // the timeline: every step of the shown runs (animations are written once, at the end: not on it)
  const steps = new Set();
  for (const run of shownRuns()) {
    for (const t of Object.values(infos[run] ? infos[run].tags : {})) {
      if (!t.animated) for (const s of t.steps) steps.add(s);
    }
  }
  timeline = [...steps].sort((a, b) => a - b);
  els.slider.max = Math.max(0, timeline.length - 1);
  els.slider.disabled = timeline.length < 2;
  if (timeline.length && (state.epoch === null || !timeline.includes(state.epoch))) {
    state.epoch = state.epoch === null ? timeline[timeline.length - 1] : nearest(state.epoch);
  }

  const groups = new Map();
  for (const [tag, view] of tagsShown()) {
    if (!groups.has(view)) groups.set(view, []);
    groups.get(view).push(tag);
  }
  const order = [...groups.keys()].sort((a, b) => {
    const [ra, ka] = groupRank(a);
    const [rb, kb] = groupRank(b);
    return ra - rb || (ka < kb ? -1 : ka > kb ? 1 : 0);
  });

  // the panels are rebuilt only when what they show changes (not for a new epoch: no flicker)
  const layout = JSON.stringify([shownRuns(), order.map((v) => [v, groups.get(v)])]);
  if (layout === shownLayout) {
    update();
    return;
  }
  shownLayout = layout;
  els.grid.replaceChildren();
  els.grid.classList.toggle('compare', Boolean(state.compare));
  if (!state.run) {
    els.grid.append(el('div', {class: 'empty'}, [
      el('h2', {text: 'No keras_vizcallbacks images in this logdir yet'}),
      el('p', {text: 'Add a view to model.fit, e.g. callbacks=[kv.FilterGrid(log_dir)], and point TensorBoard ' +
        'at the same log directory. New runs and epochs appear here while training runs.'}),
    ]));
  }
  if (state.run && !order.length) {
    els.grid.append(el('div', {class: 'empty'}, [
      el('h2', {text: `No images in ${shownRuns().join(' or ')} yet`}),
      el('p', {text: 'They appear here as training writes them.'}),
    ]));
  }
  for (const view of order) {
    const tags = groups.get(view).sort();
    const title = view === ANIMATIONS ? 'animations (whole run, written at the end)' : view;
    const collapsed = state.collapsed[view] === undefined ? view === ANIMATIONS : state.collapsed[view];
    const head = el('h2', {class: 'group-title', tabindex: 0, 'data-view': view, onclick: () => toggleGroup(view)}, [
      el('span', {class: 'caret', text: collapsed ? '\u25B8' : '\u25BE'}),
      el('span', {text: title}),
      el('span', {class: 'count', text: `${tags.length} panel${tags.length === 1 ? '' : 's'}`}),
    ]);
    const panels = el('div', {class: 'panels'}, tags.map((tag) => buildPanel(tag, view)));
    const section = el('section', {class: 'group' + (collapsed ? ' collapsed' : ''), 'data-view': view}, [head, panels]);
    els.grid.append(section);
  }
  update();
}

function toggleGroup(view) {
  const section = els.grid.querySelector(`section[data-view="${CSS.escape(view)}"]`);
  const collapsed = !section.classList.contains('collapsed');
  state.collapsed[view] = collapsed;
  section.classList.toggle('collapsed', collapsed);
  section.querySelector('.caret').textContent = collapsed ? '\u25B8' : '\u25BE';
  save();
  update();
}

function shortName(tag, view) {
  return view !== ANIMATIONS && tag.startsWith(view + '/') ? tag.slice(view.length + 1) : tag;
}

function buildPanel(tag, view) {
  const figures = shownRuns().map((run) => el('figure', {class: 'shot', 'data-run': run}, [
    el('div', {class: 'frame', title: 'Open large', onclick: () => openModal(run, tag)}, [
      el('img', {alt: `${tag} (${run})`, decoding: 'async'}),
      el('div', {class: 'placeholder'}),
    ]),
    el('figcaption', {}, [
      state.compare ? el('span', {class: 'run-name', text: run}) : null,
      el('span', {class: 'stamp'}),
    ]),
  ]));
  return el('article', {class: 'panel', 'data-tag': tag}, [
    el('h3', {title: tag}, [el('span', {text: shortName(tag, view)})]),
    el('div', {class: 'shots'}, figures),
  ]);
}

// ------------------------------------------------------------------ the epoch

function nearest(epoch) {
  // the last timeline step at or before epoch (or the first)
  let best = timeline[0];
  for (const s of timeline) if (s <= epoch) best = s;
  return best;
}

function latestAtOrBefore(t, epoch) {
  // index into t.steps of the latest step <= epoch, or -1
  let lo = 0;
  let hi = t.steps.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (t.steps[mid] <= epoch) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return found;
}

function pick(run, tag, epoch) {
  // {step, url} of what a panel shows at epoch, or {first} when nothing is there yet
  const info = infos[run];
  const t = info && info.tags[tag];
  if (!t || !t.steps.length) return null;
  const i = t.animated ? t.steps.length - 1 : latestAtOrBefore(t, epoch);
  if (i < 0) return {first: t.steps[0]};
  const s = t.steps[i];
  return {step: s, animated: t.animated, url: './image?' + query({run, tag, step: s, w: t.wall_times[i]})};
}

function setEpoch(epoch) {
  state.epoch = epoch;
  save();
  update();
}

function moveTo(index) {
  if (!timeline.length) return;
  index = Math.max(0, Math.min(timeline.length - 1, index));
  setEpoch(timeline[index]);
}

function step(delta) {
  const i = timeline.indexOf(state.epoch);
  moveTo((i < 0 ? 0 : i) + delta);
}

function update() {
  const i = timeline.indexOf(state.epoch);
  els.slider.value = String(Math.max(0, i));
  if (timeline.length) {
    els.epochLabel.textContent = `epoch ${state.epoch}`;
    els.epochLabel.dataset.step = String(state.epoch);
    els.range.textContent = `${i + 1} of ${timeline.length} \u00B7 epochs ${timeline[0]}\u2013${timeline[timeline.length - 1]}`;
  } else {
    els.epochLabel.textContent = 'no epochs yet';
    delete els.epochLabel.dataset.step;
    els.range.textContent = '';
  }
  for (const button of [els.first, els.prev]) button.disabled = i <= 0;
  for (const button of [els.next, els.last]) button.disabled = i < 0 || i >= timeline.length - 1;
  for (const panel of els.grid.querySelectorAll('section:not(.collapsed) article.panel')) {
    for (const figure of panel.querySelectorAll('figure.shot')) showFigure(figure, figure.dataset.run, panel.dataset.tag);
  }
  if (modal) showFigure(els.modalFigure, modal.run, modal.tag);
  prefetch(i + 1);
}

function showFigure(figure, run, tag) {
  const img = figure.querySelector('img');
  const stamp = figure.querySelector('.stamp');
  const placeholder = figure.querySelector('.placeholder');
  const p = state.epoch === null ? null : pick(run, tag, state.epoch);
  if (!p || p.url === undefined) {
    img.hidden = true;
    img.removeAttribute('src');
    delete img.dataset.url;
    delete img.dataset.step;
    placeholder.hidden = false;
    placeholder.textContent = !p ? `not in run ${run}` : `first image at epoch ${p.first}`;
    stamp.textContent = '';
    figure.classList.remove('stale');
    return;
  }
  figure.classList.toggle('stale', !p.animated && p.step !== state.epoch);
  stamp.textContent = p.animated ? `animation \u00B7 to epoch ${p.step}` :
    p.step === state.epoch ? `epoch ${p.step}` : `epoch ${p.step} (latest \u2264 ${state.epoch})`;
  if (img.dataset.url === p.url) return;
  img.dataset.url = p.url;
  pending += 1;
  const loader = new Image();
  const done = (ok) => {
    pending = Math.max(0, pending - 1);
    if (img.dataset.url !== p.url) return; // the epoch moved on meanwhile
    if (ok) {
      img.onload = () => img.classList.toggle('upscaled', img.naturalWidth < img.clientWidth);
      img.src = p.url;
      img.dataset.step = String(p.step);
      img.hidden = false;
      placeholder.hidden = true;
    } else {
      img.hidden = true;
      placeholder.hidden = false;
      placeholder.textContent = `epoch ${p.step} could not be loaded`;
    }
  };
  loader.onload = () => done(true);
  loader.onerror = () => done(false);
  loader.src = p.url;
}

const prefetched = new Set();

function prefetch(index) {
  // warm the browser cache with the next frame (the image responses are cacheable)
  if (index < 0 || index >= timeline.length) return;
  const epoch = timeline[index];
  for (const panel of els.grid.querySelectorAll('section:not(.collapsed) article.panel')) {
    for (const run of shownRuns()) {
      const p = pick(run, panel.dataset.tag, epoch);
      if (p && p.url && !prefetched.has(p.url)) {
        prefetched.add(p.url);
        new Image().src = p.url;
      }
    }
  }
  if (prefetched.size > 5000) prefetched.clear();
}

// ------------------------------------------------------------------ playback

function togglePlay() {
  if (playing) pause();
  else play();
}

function play() {
  if (timeline.length < 2) return;
  if (timeline.indexOf(state.epoch) >= timeline.length - 1) moveTo(0);
  setPlayButton(true);
  let waited = 0;
  const tick = () => {
    const delay = 1000 / state.speed;
    if (pending > 0 && waited < 3000) {
      // hold the frame until its images are in, so every epoch is seen
      waited += 50;
      playing = setTimeout(tick, 50);
      return;
    }
    waited = 0;
    const i = timeline.indexOf(state.epoch);
    if (i >= timeline.length - 1) {
      if (!state.loop) {
        pause();
        return;
      }
      moveTo(0);
    } else {
      moveTo(i + 1);
    }
    playing = setTimeout(tick, delay);
  };
  playing = setTimeout(tick, 1000 / state.speed);
}

function pause() {
  clearTimeout(playing);
  playing = null;
  setPlayButton(false);
}

function listenToParentKeys() {
  // Keys pressed in TensorBoard's page around this iframe (before a click moves the focus into it) reach
  // the dashboard too, while its tab is the one shown.
  try {
    const frame = window.frameElement;
    const host = window.parent && window.parent !== window ? window.parent.document : null;
    if (!frame || !host) return;
    host.addEventListener('keydown', (e) => {
      if (frame.isConnected && frame.getClientRects().length && frame.offsetParent !== null) onKey(e);
    });
  } catch (e) {
    // another origin: keys work once the page has the focus
  }
}

function onKey(e) {
  const target = e.target;
  if (e.defaultPrevented || e.altKey || e.ctrlKey || e.metaKey) return;
  if (target && (target.tagName === 'SELECT' || target.tagName === 'TEXTAREA' || target.isContentEditable ||
      (target.tagName === 'INPUT' && target.type !== 'range' && target.type !== 'checkbox'))) return;
  const i = timeline.indexOf(state.epoch);
  if (e.key === 'ArrowLeft' || e.key === 'ArrowRight') {
    pause();
    moveTo(i + (e.key === 'ArrowLeft' ? -1 : 1));
  } else if (e.key === 'Home') {
    moveTo(0);
  } else if (e.key === 'End') {
    moveTo(timeline.length - 1);
  } else if (e.key === ' ' && target.tagName !== 'BUTTON') {
    togglePlay();
  } else if (e.key === 'Escape' && modal) {
    closeModal();
  } else {
    return;
  }
  e.preventDefault();
}

// ------------------------------------------------------------------ one panel, large

function openModal(run, tag) {
  modal = {run, tag};
  const t = infos[run] && infos[run].tags[tag];
  els.modalFigure = el('figure', {class: 'shot large', 'data-run': run}, [
    el('div', {class: 'frame'}, [el('img', {alt: tag}), el('div', {class: 'placeholder'})]),
    el('figcaption', {}, [el('span', {class: 'stamp'})]),
  ]);
  const description = t && t.description ? t.description : '(no description)';
  els.modal.replaceChildren(el('div', {class: 'dialog', role: 'dialog', 'aria-label': tag}, [
    el('div', {class: 'dialog-head'}, [
      el('h2', {}, [el('span', {text: tag}), el('span', {class: 'muted', text: ` \u00B7 run ${run}`})]),
      el('button', {class: 'icon close', title: 'Close (Esc)', onclick: closeModal}, icon('close')),
    ]),
    el('div', {class: 'dialog-body'}, [
      els.modalFigure,
      el('aside', {class: 'description'}, [
        el('h3', {text: 'Description'}),
        el('div', {class: 'text'}, markdown(description)),
        el('p', {class: 'muted', text: '\u2190 \u2192 move the epoch, space plays, Esc closes.'}),
      ]),
    ]),
  ]));
  els.modal.hidden = false;
  showFigure(els.modalFigure, run, tag);
}

function closeModal() {
  modal = null;
  els.modalFigure = null;
  els.modal.hidden = true;
  els.modal.replaceChildren();
}

// ------------------------------------------------------------------ descriptions

function markdown(text) {
  // The little Markdown the views' descriptions use (paragraphs, '-' lists, **bold**, *italic*, `code`),
  // built as DOM nodes: nothing from the file is ever parsed as HTML.
  const blocks = [];
  for (const chunk of text.split(/\n\s*\n/)) {
    const lines = chunk.split('\n').filter((l) => l.trim());
    if (!lines.length) continue;
    if (lines.every((l) => /^\s*[-*] /.test(l))) {
      blocks.push(el('ul', {}, lines.map((l) => el('li', {}, inline(l.replace(/^\s*[-*] /, ''))))));
    } else {
      blocks.push(el('p', {}, inline(lines.join(' '))));
    }
  }
  return blocks;
}

function inline(text) {
  const nodes = [];
  const pattern = /`([^`]+)`|\*\*([^*]+)\*\*|\*([^*\s][^*]*)\*/g;
  let last = 0;
  for (const m of text.matchAll(pattern)) {
    if (m.index > last) nodes.push(document.createTextNode(text.slice(last, m.index)));
    if (m[1] !== undefined) nodes.push(el('code', {text: m[1]}));
    else if (m[2] !== undefined) nodes.push(el('strong', {}, inline(m[2])));
    else nodes.push(el('em', {text: m[3]}));
    last = m.index + m[0].length;
  }
  if (last < text.length) nodes.push(document.createTextNode(text.slice(last)));
  return nodes;
}
