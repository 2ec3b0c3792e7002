/** Control characters (ANSI escapes in a requested path, say) never reach the operator's terminal. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
export const printable = (v: string) => v.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
