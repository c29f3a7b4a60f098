import { defineConfig } from 'vitest/config';

export default defineConfig({
  esbuild: { jsx: 'transform', jsxFactory: 'React.createElement', jsxFragment: 'React.Fragment' },
  test: {
    environment: 'jsdom',
    include: ['src/**/*.test.{ts,tsx}'],
    setupFiles: ['./vitest.setup.ts'],
    testTimeout: 20000,
    css: false,
    // @grafana packages ship ESM that Node cannot load unprocessed (CSS and extensionless imports).
    server: { deps: { inline: [/@grafana\//] } },
  },
});
