/**
 * The fort's own App Viewer (`/`, `/viewer.js`, `/viewer.css`): takes the user token from the
 * cloud's login redirect (`#token=...`, a fragment so it never reaches a server log), then shows
 * an app with the same API a hub page uses: list boxes, KPIs, a bar chart and the rows, computed
 * by fort-engine; the plain rows table for data the engine does not serve. No framework, no CDN,
 * no inline script or style (the CSP is default-src 'self'); fort data is only ever set as text.
 */
export { viewerHtml } from './viewer/html.js';
export { VIEWER_CSS } from './viewer/css.js';
export { VIEWER_JS } from './viewer/script.js';
