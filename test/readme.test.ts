// README.md's TypeScript examples are code, not prose: each ```ts block is
// type-checked against lib/ and run, so the README cannot drift from the API.
import * as fs from 'fs';
import * as path from 'path';
import * as ts from 'typescript';

const repoRoot = path.resolve(__dirname, '..');
const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);

function typeCheck(source: string, file: string): string[] {
  const options: ts.CompilerOptions = {
    strict: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.CommonJS,
    moduleResolution: ts.ModuleResolutionKind.Node10,
    esModuleInterop: true,
    noEmit: true,
    skipLibCheck: true,
    types: ['node'],
    baseUrl: repoRoot,
    paths: { rqcast: ['lib/index.ts'] },
  };
  const host = ts.createCompilerHost(options);
  const read = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, onError, create) =>
    name === file ? ts.createSourceFile(name, source, lang) : read(name, lang, onError, create);
  const program = ts.createProgram([file], options, host);
  return ts
    .getPreEmitDiagnostics(program)
    .map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
}

describe('README.md TypeScript examples', () => {
  it('has at least one example', () => {
    expect(blocks.length).toBeGreaterThan(0);
  });

  blocks.forEach((source, i) => {
    it(`example ${i + 1} type-checks and runs`, async () => {
      const file = path.join(repoRoot, 'test', `__readme_example_${i + 1}.ts`);
      expect(typeCheck(source, file)).toEqual([]);
      const js = ts.transpileModule(source, {
        compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
      }).outputText;
      const localRequire = (id: string): unknown =>
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        require(id === 'rqcast' ? path.join(repoRoot, 'lib', 'index.ts') : id);
      const mod = { exports: {} };
      const run = new Function('require', 'module', 'exports', `return (async () => {\n${js}\n})();`);
      await run(localRequire, mod, mod.exports);
    });
  });
});

describe('README.md Benchmarks section', () => {
  // "Benchmarks (`npm run bench:*`)": a newcomer finds each one there.
  it('names every bench:* script of package.json', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    const section = readme.slice(readme.indexOf('## Benchmarks'), readme.indexOf('\n## ', readme.indexOf('## Benchmarks') + 1));
    const benches = Object.keys(pkg.scripts).filter((s) => s.startsWith('bench:'));
    expect(benches.length).toBeGreaterThan(0);
    const missing = benches.filter((s) => !new RegExp(`npm run ${s.replace(':', '\\:')}(\\s|$)`, 'm').test(section));
    expect(missing).toEqual([]);
  });
});
