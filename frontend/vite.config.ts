import { defineConfig } from 'vite';

/**
 * module.js for Grafana: one AMD module whose dependencies are the packages Grafana provides at
 * run time (the externals of Grafana's create-plugin template); everything else (yaml) is bundled.
 * JSX uses the classic React.createElement transform, so no react/jsx-runtime import is needed.
 */
export const GRAFANA_EXTERNALS = [
  'lodash',
  'jquery',
  'moment',
  'slate',
  'emotion',
  '@emotion/react',
  '@emotion/css',
  'prismjs',
  'slate-plain-serializer',
  '@grafana/slate-react',
  'react',
  'react-dom',
  'react-redux',
  'redux',
  'rxjs',
  'i18next',
  'react-router',
  'd3',
  'angular',
];
const EXTERNAL_PATTERNS = [/^@grafana\/ui(\/|$)/, /^@grafana\/runtime(\/|$)/, /^@grafana\/data(\/|$)/, /^@grafana\/schema(\/|$)/, /^rxjs\//];

export function isGrafanaExternal(id: string): boolean {
  return GRAFANA_EXTERNALS.includes(id) || EXTERNAL_PATTERNS.some((re) => re.test(id));
}

export default defineConfig({
  esbuild: { jsx: 'transform', jsxFactory: 'React.createElement', jsxFragment: 'React.Fragment' },
  define: { 'process.env.NODE_ENV': JSON.stringify('production') },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: true,
    target: 'es2020',
    minify: 'esbuild',
    lib: { entry: 'src/module.ts', fileName: () => 'module.js', formats: ['es'] },
    rollupOptions: {
      external: isGrafanaExternal,
      // An array of outputs makes Vite use this format instead of lib.formats; Grafana's
      // SystemJS loader reads AMD (define([...deps], factory)).
      output: [{ format: 'amd', entryFileNames: 'module.js', inlineDynamicImports: true, exports: 'named' }],
    },
  },
});
