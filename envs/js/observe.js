// One pass over one frame's DOM: marks every element a user could interact with by a stable
// `data-ft-id` and returns the element tree as a JSON string (one compact array per node), so the
// whole observation of a frame costs a single page.evaluate.
//
// Node array: [id, role, name, depth, value, states, offscreen, tag, frameKey]
//   id: "e12" / "f1e3" or null for text and structure; states: space-separated; offscreen: 0/1;
//   frameKey: for role "iframe", the data-ft-frame key that the child frame reports back.
(args) => {
  const ID_ATTR = 'data-ft-id';
  const FRAME_ATTR = 'data-ft-frame';
  if (!window.__ftPrefix) {
    if (!args.prefix) return JSON.stringify({ needsPrefix: true });
    window.__ftPrefix = args.prefix;
  }
  const prefix = window.__ftPrefix;
  const ownId = new RegExp('^' + prefix + '(\\d+)$');
  if (window.__ftNextId === undefined) {
    // Ids may already be in the DOM (a restored snapshot, a page that ships them): never reuse them.
    let next = 1;
    for (const el of document.querySelectorAll('[' + ID_ATTR + ']')) {
      const m = ownId.exec(el.getAttribute(ID_ATTR));
      if (m) next = Math.max(next, Number(m[1]) + 1);
    }
    window.__ftNextId = next;
  }
  if (window.__ftFrameSeq === undefined) window.__ftFrameSeq = 0;

  const SKIP = new Set(['SCRIPT', 'STYLE', 'NOSCRIPT', 'TEMPLATE', 'HEAD', 'META', 'LINK', 'TITLE',
    'BASE', 'DATALIST', 'PARAM', 'SOURCE', 'TRACK']);
  const WIDGET_ROLES = new Set(['button', 'link', 'checkbox', 'radio', 'switch', 'tab', 'menuitem',
    'menuitemcheckbox', 'menuitemradio', 'option', 'combobox', 'listbox', 'textbox', 'searchbox',
    'spinbutton', 'slider', 'scrollbar', 'treeitem', 'gridcell']);
  const INPUT_ROLES = { button: 'button', submit: 'button', reset: 'button', image: 'button',
    file: 'button', checkbox: 'checkbox', radio: 'radio', range: 'slider', number: 'spinbutton',
    search: 'searchbox' };
  const SHOWN_TYPES = new Set(['password', 'email', 'tel', 'url', 'date', 'time', 'datetime-local',
    'month', 'week', 'color', 'file']);
  const FORM_TAGS = new Set(['INPUT', 'BUTTON', 'SELECT', 'TEXTAREA', 'OPTION', 'FIELDSET']);
  // Inside these, pointer cursors belong to the control itself and give no ids of their own.
  const CONTROL_TAGS = new Set(['A', 'BUTTON', 'LABEL', 'SUMMARY', 'SELECT']);

  const vw = window.innerWidth;
  const vh = window.innerHeight;
  let active = document.activeElement;
  while (active && active.shadowRoot && active.shadowRoot.activeElement) active = active.shadowRoot.activeElement;
  if (active === document.body || active === document.documentElement) active = null;

  // Elements whose cursor turns into a pointer on hover (`.x:hover {cursor: pointer}`, as MiniWoB's
  // social-media icons) are clickable to a user even though their resting cursor is the default.
  const hoverPointer = [];
  const collectHoverRules = (rules) => {
    for (const rule of rules) {
      if (rule.cssRules && !rule.selectorText) { collectHoverRules(rule.cssRules); continue; }
      if (!rule.selectorText || !rule.style || rule.style.cursor !== 'pointer') continue;
      for (const sel of rule.selectorText.split(',')) {
        if (sel.includes(':hover')) hoverPointer.push(sel.replace(/:hover/g, '').trim() || '*');
      }
    }
  };
  for (const sheet of document.styleSheets) {
    try { collectHoverRules(sheet.cssRules); } catch (e) { /* cross-origin sheet: rules unreadable */ }
  }
  let hoverSelector = hoverPointer.join(',');
  try { if (hoverSelector) document.documentElement.matches(hoverSelector); } catch (e) { hoverSelector = ''; }

  const nodes = [];
  const seen = new Set();
  // Attributes are written after the walk, so that style and layout stay clean while being read.
  const toMark = [];   // element, id, element, id, ...
  const framesToMark = [];
  let idCount = 0;
  let focusedId = null;
  let focusedFrame = null;
  let buf = '';
  let bufDepth = 0;
  let bufOff = 0;

  const norm = (s) => (s ? s.replace(/\s+/g, ' ').trim() : '');
  const SEPARATOR = /^[\s·•|\/,;:>»›–—*]+$/;  // "Catalog · Account": the dot says nothing
  const flush = () => {
    if (buf) {
      const text = norm(buf);
      if (text && !SEPARATOR.test(text)) nodes.push([null, 'text', text, bufDepth, null, '', bufOff, '', null]);
      buf = '';
    }
  };
  const addText = (s, depth, off) => {
    if (!buf) { bufDepth = depth; bufOff = off; }
    buf += s;
  };
  const idFor = (el) => {
    let id = el.getAttribute(ID_ATTR);
    if (id === null || !ownId.test(id) || seen.has(id)) {
      id = prefix + (window.__ftNextId++);
      toMark.push(el, id);
    } else {
      const n = Number(id.slice(prefix.length));
      if (n >= window.__ftNextId) window.__ftNextId = n + 1;
    }
    seen.add(id);
    return id;
  };

  const labelledBy = (el) => {
    const ref = el.getAttribute('aria-labelledby');
    if (!ref) return '';
    const root = el.getRootNode();
    return norm(ref.split(/\s+/).map((id) => {
      const target = (root.getElementById ? root.getElementById(id) : null) || document.getElementById(id);
      return target ? target.textContent : '';
    }).join(' '));
  };
  // A label's words without the controls inside it (a wrapping label would otherwise repeat the
  // options of its select or the text of its textarea).
  const labelText = (node) => {
    let out = '';
    for (let n = node.firstChild; n; n = n.nextSibling) {
      if (n.nodeType === 3) out += n.data;
      else if (n.nodeType === 1 && !FORM_TAGS.has(n.tagName) && !SKIP.has(n.tagName)) out += ' ' + labelText(n) + ' ';
    }
    return out;
  };
  const controlLabel = (el) => {
    if (!el.labels || !el.labels.length) return '';
    return norm(Array.from(el.labels, labelText).join(' '));
  };

  const inputType = (el) => (el.getAttribute('type') || 'text').toLowerCase();
  const nativeRole = (el, tag) => {
    switch (tag) {
      case 'A': case 'AREA': return el.hasAttribute('href') ? 'link' : null;
      case 'BUTTON': return 'button';
      case 'INPUT': {
        const type = inputType(el);
        if (type === 'hidden') return null;
        if (el.hasAttribute('list')) return 'combobox';
        return INPUT_ROLES[type] || 'textbox';
      }
      case 'SELECT': return el.multiple || el.size > 1 ? 'listbox' : 'combobox';
      case 'TEXTAREA': return 'textbox';
      case 'SUMMARY': return el.parentElement && el.parentElement.tagName === 'DETAILS' ? 'button' : null;
      default: return null;
    }
  };
  const editableRoot = (el) => {
    const ce = el.getAttribute('contenteditable');
    return ce !== null && ce !== 'false' && !(el.parentElement && el.parentElement.isContentEditable);
  };

  const statesOf = (el, tag, role) => {
    const s = [];
    const aria = (name) => el.getAttribute(name);
    if (tag === 'INPUT' && (el.type === 'checkbox' || el.type === 'radio')) {
      if (el.indeterminate) s.push('mixed'); else if (el.checked) s.push('checked');
    } else {
      const checked = aria('aria-checked');
      if (checked === 'true') s.push('checked'); else if (checked === 'mixed') s.push('mixed');
    }
    if ((tag === 'OPTION' && el.selected) || aria('aria-selected') === 'true') s.push('selected');
    if ((FORM_TAGS.has(tag) && el.matches(':disabled')) || aria('aria-disabled') === 'true') s.push('disabled');
    const expanded = tag === 'SUMMARY' ? String(el.parentElement.open) : aria('aria-expanded');
    if (expanded === 'true') s.push('expanded'); else if (expanded === 'false') s.push('collapsed');
    const pressed = aria('aria-pressed');
    if (pressed === 'true') s.push('pressed');
    if (el.required || aria('aria-required') === 'true') s.push('required');
    if (((tag === 'INPUT' || tag === 'TEXTAREA') && el.readOnly) || aria('aria-readonly') === 'true') s.push('readonly');
    if (tag === 'INPUT' && SHOWN_TYPES.has(el.type)) s.push('type=' + el.type);
    return s.join(' ');
  };
  // For a control with no name at all (an icon span), its id or classes are the only clue.
  const hintOf = (el) => {
    const id = el.getAttribute('id');
    if (id && id.length <= 24) return '#' + id;
    const classes = (el.getAttribute('class') || '').trim().split(/\s+/).filter((c) => c && c.length <= 24);
    return classes.length ? '.' + classes.slice(0, 2).join('.') : '';
  };
  const withHint = (states, el, name) => {
    if (name) return states;
    const hint = hintOf(el);
    return hint ? (states ? states + ' ' + hint : hint) : states;
  };

  const valueOf = (el, tag, role) => {
    if (tag === 'INPUT') {
      const type = el.type;
      if (type === 'checkbox' || type === 'radio' || INPUT_ROLES[type] === 'button' && type !== 'file') return null;
      if (type === 'file') return Array.from(el.files || [], (f) => f.name).join(', ');
      // A password never leaves the page: the agent only learns whether the field is filled.
      if (type === 'password') return el.value ? '********' : '';
      return el.value;
    }
    if (tag === 'TEXTAREA') return el.value;
    if (role === 'slider' || role === 'spinbutton' || role === 'scrollbar') {
      return el.getAttribute('aria-valuetext') || el.getAttribute('aria-valuenow');
    }
    return null;
  };

  const nameOf = (el, tag, role, text) => {
    const aria = labelledBy(el) || norm(el.getAttribute('aria-label'));
    if (aria) return aria;
    if (tag === 'INPUT' || tag === 'SELECT' || tag === 'TEXTAREA') {
      const label = controlLabel(el);
      if (label) return label;
      if (tag === 'INPUT') {
        const type = el.type;
        if (type === 'submit' || type === 'reset' || type === 'button') {
          return norm(el.value) || (type === 'submit' ? 'Submit' : type === 'reset' ? 'Reset' : '');
        }
        if (type === 'image') return norm(el.alt) || 'Submit';
      }
    }
    if (text) return text;
    return norm(el.getAttribute('title') || el.getAttribute('placeholder') || el.getAttribute('alt') || '');
  };

  // Names of the nodes emitted since `start`, joined, then those nodes removed: a link or heading
  // shows as one line with its text instead of its text's pieces.
  const collapse = (start, sep) => {
    const parts = [];
    for (let i = start; i < nodes.length; i++) if (nodes[i][2]) parts.push(nodes[i][2]);
    nodes.length = start;
    return parts.join(sep);
  };

  const interactiveRole = (el, tag, roleAttr, cursor, parentCursor, inControl) => {
    if (roleAttr && WIDGET_ROLES.has(roleAttr)) return roleAttr;
    const native = nativeRole(el, tag);
    if (native) return native;
    if (editableRoot(el)) return 'textbox';
    if (tag === 'LABEL') {
      // A styled label for a hidden checkbox is what the user clicks: it stands in for the control.
      const control = el.control;
      if (control && !control.checkVisibility()) return nativeRole(control, control.tagName);
      if (control) return null;
    }
    if (tag === 'BODY' || tag === 'HTML') return null;
    const fallback = roleAttr || 'clickable';
    if (el === active) return roleAttr || 'generic';
    const tabindex = el.getAttribute('tabindex');
    if (tabindex !== null && Number(tabindex) >= 0) return fallback;
    if (el.onclick !== null || el.onmousedown !== null || el.hasAttribute('onclick')) return fallback;
    if (!inControl) {
      if (cursor === 'pointer' && parentCursor !== 'pointer') return fallback;
      if (hoverSelector && parentCursor !== 'pointer' && el.matches(hoverSelector)) return fallback;
    }
    return null;
  };

  const walkChildren = (parent, depth, cursor, clip, textOn, off, inControl) => {
    const root = parent.shadowRoot || parent;
    for (let n = root.firstChild; n; n = n.nextSibling) visit(n, depth, cursor, clip, textOn, off, inControl);
  };
  const visit = (n, depth, cursor, clip, textOn, off, inControl) => {
    if (n.nodeType === 3) {
      if (textOn) addText(n.data, depth, off);
    } else if (n.nodeType === 1) {
      if (n.tagName === 'SLOT') {
        const assigned = n.assignedNodes({ flatten: true });
        if (assigned.length) for (const a of assigned) visit(a, depth, cursor, clip, textOn, off, inControl);
        else walkChildren(n, depth, cursor, clip, textOn, off, inControl);
      } else {
        walk(n, depth, cursor, clip, off, inControl);
      }
    }
  };

  const walk = (el, depth, parentCursor, clip, parentOff, inControl) => {
    const tag = el.tagName;
    if (SKIP.has(tag)) return;
    if (el.getAttribute('aria-hidden') === 'true') return;
    if (tag === 'BR') { addText(' ', depth, bufOff); return; }
    const style = getComputedStyle(el);
    const display = style.display;
    if (display === 'none') return;
    const textOn = style.visibility === 'visible';
    const cursor = style.cursor;
    if (display === 'contents') {
      walkChildren(el, depth, cursor, clip, textOn, parentOff, inControl);
      return;
    }
    const r = el.getBoundingClientRect();
    const overflowX = style.overflowX;
    const overflowY = style.overflowY;
    if ((r.width === 0 && overflowX !== 'visible') || (r.height === 0 && overflowY !== 'visible')) return;
    if ((r.width === 0 || r.height === 0) && !el.checkVisibility()) return;  // e.g. content-visibility: hidden
    const off = r.bottom <= clip[1] || r.top >= clip[3] || r.right <= clip[0] || r.left >= clip[2] ? 1 : 0;
    let childClip = style.position === 'fixed' ? [0, 0, vw, vh] : clip;
    if (overflowX !== 'visible' || overflowY !== 'visible') {
      childClip = [Math.max(childClip[0], r.left), Math.max(childClip[1], r.top),
        Math.min(childClip[2], r.right), Math.min(childClip[3], r.bottom)];
    }
    const block = !display.startsWith('inline');
    if (block) flush();

    if (tag === 'IFRAME' || tag === 'FRAME') {
      let key = el.getAttribute(FRAME_ATTR);
      if (key === null) { key = String(++window.__ftFrameSeq); framesToMark.push(el, key); }
      flush();
      nodes.push([null, 'iframe', norm(el.getAttribute('title') || el.getAttribute('name')), depth, null, '', off, 'iframe', key]);
      if (el === active) focusedFrame = key;
      return;
    }
    const roleAttr = (el.getAttribute('role') || '').trim().split(/\s+/)[0].toLowerCase();
    const role = textOn ? interactiveRole(el, tag, roleAttr, cursor, parentCursor, inControl) : null;

    if (tag === 'SELECT') {
      flush();
      if (!role || r.width === 0 || r.height === 0) return;
      const id = idFor(el);
      const selected = Array.from(el.selectedOptions, (o) => norm(o.label));
      nodes.push([id, role, nameOf(el, tag, role, ''), depth, selected.join(', '), statesOf(el, tag, role), off, 'select', null]);
      idCount++;
      if (el === active) focusedId = id;
      for (const option of el.options) {
        if (option.hidden) continue;
        nodes.push([idFor(option), 'option', norm(option.label), depth + 1, null, statesOf(option, 'OPTION', 'option'), off, 'option', null]);
        idCount++;
      }
      return;
    }
    if (tag === 'svg' || tag === 'IMG' || tag === 'CANVAS' || tag === 'VIDEO' || tag === 'AUDIO') {
      // Leaves: an image's words are its alt text or its <title>.
      const alt = tag === 'IMG' ? norm(el.getAttribute('alt')) : tag === 'svg' ? norm(el.querySelector('title')?.textContent) : '';
      const name = norm(el.getAttribute('aria-label')) || alt || norm(el.getAttribute('title'));
      if (role) {
        flush();
        const id = idFor(el);
        nodes.push([id, role, name, depth, null, withHint(statesOf(el, tag, role), el, name), off, tag.toLowerCase(), null]);
        idCount++;
        if (el === active) focusedId = id;
      } else if (name && textOn) {
        flush();
        nodes.push([null, 'img', name, depth, null, '', off, tag.toLowerCase(), null]);
      }
      return;
    }

    if (tag === 'DETAILS' && !el.open) {
      // A closed <details> shows only its summary.
      const summary = Array.from(el.children).find((c) => c.tagName === 'SUMMARY');
      if (summary) walk(summary, depth, cursor, childClip, off, inControl);
      if (block) flush();
      return;
    }
    const heading = /^H[1-6]$/.test(tag) || roleAttr === 'heading';
    const row = tag === 'TR' || roleAttr === 'row';
    if (role || heading || row) {
      flush();
      const start = nodes.length;
      // Ids are numbered in document order: the element's before its descendants'.
      const marks = toMark.length;
      const node = [role ? idFor(el) : null, role || (heading ? 'heading' : 'row'), '', depth, null, '', off, tag.toLowerCase(), null];
      nodes.push(node);
      const idsBefore = idCount;
      const leafControl = tag === 'INPUT' || tag === 'TEXTAREA';
      if (!leafControl) {
        const controlHere = inControl || CONTROL_TAGS.has(tag);
        walkChildren(el, depth + 1, cursor, childClip, textOn, off, controlHere);
        flush();
      }
      let text = '';
      if (idCount === idsBefore) text = collapse(start + 1, row ? ' | ' : ' ');
      if (!role) {
        node[2] = text;
        if (!text && nodes.length === start + 1) nodes.length = start;  // empty heading or row
        return;
      }
      if ((r.width === 0 || r.height === 0) && !text && nodes.length === start + 1) {
        nodes.length = start;  // zero-size control with nothing visible inside: hidden
        if (toMark[marks] === el) toMark[marks] = null;  // a new id it will not need
        return;
      }
      const editable = role === 'textbox' && !leafControl;
      const id = node[0];
      node[2] = nameOf(el, tag, role, editable ? '' : text);
      node[4] = editable ? text : valueOf(el, tag, role);
      const stateSource = tag === 'LABEL' ? el.control : el;
      node[5] = withHint(statesOf(stateSource, stateSource.tagName, role), el, node[2] || node[4]);
      idCount++;
      if (el === active) focusedId = id;
      return;
    }

    // Plain structure: its text joins the running text; a label whose control shows its own name
    // would only repeat it.
    const textHere = textOn && !(tag === 'LABEL' && el.control);
    walkChildren(el, depth, cursor, childClip, textHere, off, inControl);
    if (block) flush();
  };

  if (document.documentElement) walk(document.documentElement, 0, 'auto', [0, 0, vw, vh], 0, false);
  flush();
  for (let i = 0; i < toMark.length; i += 2) if (toMark[i]) toMark[i].setAttribute(ID_ATTR, toMark[i + 1]);
  for (let i = 0; i < framesToMark.length; i += 2) framesToMark[i].setAttribute(FRAME_ATTR, framesToMark[i + 1]);
  let frameKey = null;
  try { frameKey = window.frameElement ? window.frameElement.getAttribute(FRAME_ATTR) : null; } catch (e) { /* cross-origin parent */ }
  return JSON.stringify({ prefix, title: document.title, nodes, focusedId, focusedFrame, frameKey });
}
