import { APP_JS } from './script-app.js';
import { SHELL_JS } from './script-shell.js';

/** `/viewer.js`: one strict IIFE of the shell and the app view (no framework, no eval, no inline script). */
export const VIEWER_JS = `'use strict';
(() => {${SHELL_JS}${APP_JS}})();
`;
