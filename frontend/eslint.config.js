import js from '@eslint/js';
import globals from 'globals';
import reactHooks from 'eslint-plugin-react-hooks';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'test-output/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.{ts,tsx}'],
    languageOptions: { globals: { ...globals.browser } },
    plugins: { 'react-hooks': reactHooks },
    rules: {
      'react-hooks/rules-of-hooks': 'error',
      'react-hooks/exhaustive-deps': 'warn',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      // Grafana's loader refuses plugins that look like Angular ones.
      'no-restricted-imports': ['error', { paths: ['angular'], patterns: ['angular*', 'app/*', 'grafana/app/*'] }],
      'no-restricted-syntax': [
        'error',
        { selector: "Identifier[name='PanelCtrl'], Identifier[name='QueryCtrl'], Identifier[name='ctrl']", message: 'No Angular-style controllers' },
      ],
    },
  },
  {
    files: ['**/*.{js,mjs}', 'browser-test/**', '*.config.ts'],
    languageOptions: { globals: { ...globals.node, ...globals.browser } },
  }
);
