import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));

/** Builds the harness page (real React, @grafana/ui, Monaco) into test-output/harness. */
export default defineConfig({
  root: here,
  base: './',
  logLevel: 'error',
  esbuild: { jsx: 'transform', jsxFactory: 'React.createElement', jsxFragment: 'React.Fragment' },
  define: { 'process.env.NODE_ENV': JSON.stringify('production') },
  worker: { format: 'es' },
  build: {
    outDir: fileURLToPath(new URL('../test-output/harness', import.meta.url)),
    emptyOutDir: true,
    target: 'es2020',
    sourcemap: false,
    minify: false,
    chunkSizeWarningLimit: 100000,
  },
});
