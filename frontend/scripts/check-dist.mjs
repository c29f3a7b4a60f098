// Checks dist/module.js: an AMD module (define([...deps], factory)) whose dependencies are only
// packages Grafana provides at run time, with nothing Grafana's Angular detector looks for.
import { readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const file = fileURLToPath(new URL('../dist/module.js', import.meta.url));
const text = readFileSync(file, 'utf8');
const fail = (msg) => {
  console.error(`check-dist: ${msg}`);
  process.exit(1);
};

const m = /^define\((\[[^\]]*\])\s*,\s*\(?function/.exec(text);
if (!m) {
  fail(`${file} does not start with an AMD define([...], function ...)`);
}
const deps = JSON.parse(m[1]);
const provided = new Set([
  'require',
  'exports',
  'module',
  'react',
  'react-dom',
  '@grafana/data',
  '@grafana/ui',
  '@grafana/runtime',
  '@grafana/schema',
  '@emotion/css',
  '@emotion/react',
  'rxjs',
  'lodash',
  'moment',
  'jquery',
  'i18next',
]);
const foreign = deps.filter((d) => !provided.has(d) && !/^rxjs\//.test(d));
if (foreign.length) {
  fail(`module.js depends on packages Grafana does not provide: ${foreign.join(', ')}`);
}
for (const needle of ['PanelCtrl', 'QueryCtrl', 'ConfigCtrl', 'app/plugins/sdk', 'angular', 'editor.html', 'ctrl.annotation', 'getLegacyAngularInjector', 'react/jsx-runtime']) {
  if (text.includes(needle)) {
    fail(`module.js contains "${needle}"`);
  }
}
if (!/\bplugin\b/.test(text)) {
  fail('module.js does not export `plugin`');
}
const size = statSync(file).size;
console.log(`check-dist: dist/module.js is AMD, ${size} bytes, externals: ${deps.filter((d) => d !== 'require' && d !== 'exports').join(', ')}`);
