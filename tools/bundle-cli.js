#!/usr/bin/env node
/*
 * Writes dist/cli/bundle.js: the modules `rqcast fetch` loads before its
 * HELLO, from tsc's output (dist/), in one file (issue 12: a fetch's
 * start-up). Run by `npm run build:ts` and `prepare` after tsc.
 *
 *   node tools/bundle-cli.js [--dist DIR] [--out FILE] [--no-deps]
 *
 * Which modules: those cli/program.js and cli/fetch.js require at their top
 * level (a require() on an unindented line of tsc's output), and theirs, and
 * so on; with their node_modules dependencies (commander, node-gyp-build)
 * unless --no-deps. A require() inside a function (a module loaded when first
 * used: the server, TCP, multicast...) is left to Node's loader, as are
 * built-in modules, JSON and addons.
 *
 * Each module becomes a function with Node's own CommonJS wrapper's
 * parameters, its source unchanged between them (a comment line names its
 * file, so a stack trace's line in the bundle leads to it). At run time
 * (main.ts) the bundle makes each module a real `Module` under its real file
 * name in Node's module cache, when first required, so a module loaded from
 * disk later (a lazy require) shares the bundle's instances and the other
 * way round; a require() the bundle resolved when it was written is
 * answered from it, any other goes to Node. `fresh()` says whether every
 * file of ours it holds is still as it was written (same size, not newer
 * than the bundle): main.ts loads the modules from disk otherwise. A
 * dependency's file that is not as it was (commander updated, or installed
 * elsewhere) is loaded from its file, the rest still from the bundle. A source map
 * (bundle.js.map) maps its lines to the files of dist/ for
 * `node --enable-source-maps`.
 */
'use strict';
const fs = require('fs');
const Module = require('module');
const path = require('path');

const ENTRIES = ['cli/program.js', 'cli/fetch.js'];
/** A require() on an unindented line: top-level code of tsc's output (and of commander's). */
const TOP_LEVEL_REQUIRE = /\brequire\((["'])([^"']+)\1\)/g;

function parseArgs(argv) {
  const repo = path.resolve(__dirname, '..');
  const opts = { dist: path.join(repo, 'dist'), out: undefined, deps: true };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--dist') opts.dist = path.resolve(argv[++i]);
    else if (argv[i] === '--out') opts.out = path.resolve(argv[++i]);
    else if (argv[i] === '--no-deps') opts.deps = false;
    else throw new Error(`bundle-cli: unknown argument ${argv[i]}`);
  }
  opts.out ??= path.join(opts.dist, 'cli', 'bundle.js');
  return opts;
}

/** The file `request` names from `file`, as Node's loader resolves it (real path), or undefined for a built-in. */
function resolveFrom(file, request) {
  const parent = { id: file, filename: file, paths: Module._nodeModulePaths(path.dirname(file)) };
  const found = Module._resolveFilename(request, parent, false);
  return path.isAbsolute(found) ? fs.realpathSync(found) : undefined;
}

/** The modules to bundle, in the order first reached, each with the requests it resolved to a bundled module. */
function collect(dist, deps) {
  const modules = new Map();
  const queue = ENTRIES.map((e) => fs.realpathSync(path.join(dist, e)));
  for (const f of queue) modules.set(f, undefined);
  while (queue.length > 0) {
    const file = queue.shift();
    const source = fs.readFileSync(file, 'utf8');
    const requests = new Map();
    for (const line of source.split('\n')) {
      if (line === '' || /^\s/.test(line) || line.startsWith('//') || line.startsWith('*')) continue;
      for (const m of line.matchAll(TOP_LEVEL_REQUIRE)) {
        if (WHEN_USED.includes(m[2])) {
          requests.set(m[2], m[2]);
          continue;
        }
        const target = resolveFrom(file, m[2]);
        if (target === undefined || !target.endsWith('.js')) continue;
        if (!deps && target.split(path.sep).includes('node_modules')) continue;
        requests.set(m[2], target);
        if (!modules.has(target)) {
          modules.set(target, undefined);
          queue.push(target);
        }
      }
    }
    modules.set(file, { source, requests });
  }
  return modules;
}

/** Base64 VLQ of one number (source maps). */
function vlq(n) {
  const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  let v = n < 0 ? (-n << 1) | 1 : n << 1;
  let out = '';
  do {
    let digit = v & 31;
    v >>>= 5;
    if (v > 0) digit |= 32;
    out += B64[digit];
  } while (v > 0);
  return out;
}

/**
 * Built-in modules that a bundled module requires at its top level but uses
 * only in a function: given as a stand-in that loads the module at first use.
 * commander requires child_process (and with it net) for executable
 * subcommands, which rqcast has none of.
 */
const WHEN_USED = ['node:child_process', 'child_process'];

/** The bundle's run-time part: the loader of the modules written after it (see the top of this file). */
const RUNTIME = `'use strict';
const Module = require('module');
const path = require('path');
const fs = require('fs');
/** The files, absolute (FILES holds them relative to this file, normalised when written). */
const ABS = FILES.map((f) => {
  let dir = __dirname;
  let rel = f[0];
  while (rel.startsWith('..' + path.sep)) {
    dir = path.dirname(dir);
    rel = rel.slice(3);
  }
  return dir + path.sep + rel;
});
function whenUsed(name) {
  let real;
  return new Proxy({}, { get: (_, key) => (real ??= require(name))[key] });
}
function load(i) {
  const filename = ABS[i];
  const cached = Module._cache[filename];
  if (cached !== undefined) return cached.exports;
  const m = new Module(filename, module);
  const dirname = path.dirname(filename);
  m.filename = filename;
  m.paths = Module._nodeModulePaths(dirname);
  Module._cache[filename] = m;
  const deps = FILES[i][2];
  const req = (request) => {
    const d = Object.prototype.hasOwnProperty.call(deps, request) ? deps[request] : undefined;
    if (typeof d === 'number') return usable(d) ? load(d) : m.require(request);
    if (typeof d === 'string') return whenUsed(d);
    // A require() inside a function (not resolved when the bundle was written) of a bundled file.
    const at = request.startsWith('./') || request.startsWith('../') ? indexOf(path.resolve(dirname, request)) : -1;
    return at >= 0 && usable(at) ? load(at) : m.require(request);
  };
  req.resolve = (request, options) => Module._resolveFilename(request, m, false, options);
  req.main = require.main;
  req.cache = Module._cache;
  let ok = false;
  try {
    MODULES[i].call(m.exports, m.exports, req, m, filename, dirname);
    ok = true;
  } finally {
    if (!ok) delete Module._cache[filename];
  }
  m.loaded = true;
  return m.exports;
}
let byFile;
/** The bundled module of \`file\` (absolute; as Node's loader would complete it), or -1. */
function indexOf(file) {
  byFile ??= new Map(ABS.map((f, i) => [f, i]));
  for (const f of [file, file + '.js', file + path.sep + 'index.js']) {
    const i = byFile.get(f);
    if (i !== undefined) return i;
  }
  return -1;
}
let own;
const same = [];
/** Whether file i is as it was when the bundle was written: same size, not newer than the bundle. */
function sameAsWritten(i) {
  if (same[i] === undefined) {
    own ??= fs.statSync(__filename).mtimeMs;
    const st = fs.statSync(ABS[i], { throwIfNoEntry: false });
    same[i] = st !== undefined && st.size === FILES[i][1] && st.mtimeMs <= own;
  }
  return same[i];
}
/** Whether file i may be run from the bundle: ours only if fresh() (main.ts asks first), a dependency's if it is as it was. */
function usable(i) {
  return FILES[i][3] === 0 || sameAsWritten(i);
}
/** Whether every file of ours in the bundle is as it was when the bundle was written (a dependency's that is not is loaded from its file). */
function fresh() {
  for (let i = 0; i < ABS.length; i++) if (FILES[i][3] === 0 && !sameAsWritten(i)) return false;
  return true;
}
/** The exports of the bundled module at \`file\` (relative to this file), or undefined if it is not bundled. */
function loadFile(file) {
  const i = indexOf(path.join(__dirname, file));
  return i < 0 ? undefined : load(i);
}
module.exports = { fresh, load: loadFile, files: () => [...ABS] };
`;

/**
 * `source` without its comments and indentation: each run of whitespace and
 * comments between two tokens (TypeScript's parser tells them apart from
 * strings, templates and regular expressions) becomes its line breaks only,
 * or one space; so every line keeps its number (stack traces, the source
 * map). A string's or an untagged template's characters beyond ASCII become
 * escapes of the same value (asciiEscaped), so that the bundle is ASCII:
 * V8 then holds its source as one byte per character, and Node reads it
 * faster at each start (one such character makes the whole 400 KB two bytes
 * per character). Unchanged if TypeScript is not installed.
 */
function stripTrivia(source, file) {
  let ts;
  try {
    ts = require('typescript');
  } catch {
    return source;
  }
  const sf = ts.createSourceFile(file, source, ts.ScriptTarget.Latest, true, ts.ScriptKind.JS);
  let out = '';
  let at = 0;
  const visit = (node) => {
    if (node.kind >= ts.SyntaxKind.FirstJSDocNode && node.kind <= ts.SyntaxKind.LastJSDocNode) return;
    if (node.kind >= ts.SyntaxKind.FirstToken && node.kind <= ts.SyntaxKind.LastToken) {
      const start = node.getStart(sf);
      if (start > at) out += source.slice(at, start).replace(/[^\n]/g, '').replace(/^$/, at === 0 ? '' : ' ');
      const text = source.slice(start, node.end);
      out += /[^\x00-\x7f]/.test(text) && holdsValue(ts, node) ? asciiEscaped(text) : text;
      at = node.end;
      return;
    }
    for (const child of node.getChildren(sf)) visit(child);
  };
  visit(sf);
  return out + source.slice(at).replace(/[^\n]/g, '');
}

/** Whether token `node` is a string or part of an untagged template: its text's escapes stand for its value (a tagged template's tag also sees the raw text). */
function holdsValue(ts, node) {
  const K = ts.SyntaxKind;
  if (node.kind === K.StringLiteral) return true;
  if (![K.NoSubstitutionTemplateLiteral, K.TemplateHead, K.TemplateMiddle, K.TemplateTail].includes(node.kind)) return false;
  let template = node.kind === K.NoSubstitutionTemplateLiteral ? node : node.parent;
  if (template.kind === K.TemplateSpan) template = template.parent;
  return template.parent?.kind !== K.TaggedTemplateExpression;
}

/**
 * A string's or template's token text with each UTF-16 unit beyond ASCII
 * written as its \u escape: the same value. An escape already there is
 * kept, but a backslash before such a character is a character escape that
 * stands for the character itself, or for nothing before a line or
 * paragraph separator (a line continuation).
 */
function asciiEscaped(text) {
  const u = (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0');
  return text.replace(/\\[\s\S]|[^\x00-\x7f]/g, (m) => {
    if (m.length === 1) return u(m);
    if (m.charCodeAt(1) <= 0x7f) return m;
    if (m[1] === '\u2028' || m[1] === '\u2029') return '';
    // A surrogate pair after the backslash: its second half is escaped by the replace's next match.
    return u(m[1]);
  });
}

function bundle(opts) {
  const modules = collect(opts.dist, opts.deps);
  const outDir = path.dirname(opts.out);
  const files = [...modules.keys()];
  const index = new Map(files.map((f, i) => [f, i]));
  const table = files.map((f) => {
    const { requests } = modules.get(f);
    const deps = Object.fromEntries([...requests].map(([r, t]) => [r, WHEN_USED.includes(t) ? t : index.get(t)]));
    return [path.relative(outDir, f), fs.statSync(f).size, deps, f.split(path.sep).includes('node_modules') ? 1 : 0];
  });
  const head = `// Generated by tools/bundle-cli.js from ${path.relative(outDir, opts.dist) || '.'}/ (do not edit): ${files.length} modules of rqcast fetch's start-up.\n`;
  let text = head + `const FILES = ${JSON.stringify(table)};\n` + RUNTIME + `const MODULES = [\n`;
  // Source map: each line of a module maps to the same line of its file (column 0).
  let line = text.split('\n').length - 1;
  const mappings = new Array(line).fill('');
  let prevSource = 0;
  let prevLine = 0;
  files.forEach((f, i) => {
    const source = stripTrivia(modules.get(f).source.replace(/\n\/\/# sourceMappingURL=.*\s*$/, '\n'), f);
    const lines = source.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    text += `// ${table[i][0]}\nfunction (exports, require, module, __filename, __dirname) {\n`;
    mappings.push('', '');
    lines.forEach((_, n) => {
      mappings.push(vlq(0) + vlq(i - prevSource) + vlq(n - prevLine) + vlq(0));
      prevSource = i;
      prevLine = n;
    });
    text += lines.join('\n') + '\n},\n';
    mappings.push('');
    line += lines.length + 3;
  });
  text += '];\n';
  const mapName = `${path.basename(opts.out)}.map`;
  text += `//# sourceMappingURL=${mapName}\n`;
  const map = { version: 3, file: path.basename(opts.out), sources: table.map((t) => t[0]), names: [], mappings: mappings.join(';') };
  fs.mkdirSync(outDir, { recursive: true });
  const tmp = `${opts.out}.${process.pid}.tmp`;
  fs.writeFileSync(`${opts.out}.map`, JSON.stringify(map));
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, opts.out);
  return { file: opts.out, modules: files.length, bytes: Buffer.byteLength(text) };
}

if (require.main === module) {
  const r = bundle(parseArgs(process.argv.slice(2)));
  process.stdout.write(`bundle-cli: ${path.relative(process.cwd(), r.file)}: ${r.modules} modules, ${r.bytes} bytes\n`);
}
module.exports = { bundle, collect };
