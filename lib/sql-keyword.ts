/**
 * The first keyword of SQL text, comments and whitespace skipped, upper case: whether a source
 * query is a SELECT is asked by the agent (definitions) and by the engine (loads), which share
 * no code but lib/.
 */
export function firstKeyword(sql: string): string {
  let s = sql;
  for (;;) {
    s = s.trimStart();
    if (s.startsWith('--')) {
      const nl = s.indexOf('\n');
      s = nl < 0 ? '' : s.slice(nl + 1);
    } else if (s.startsWith('/*')) {
      const end = s.indexOf('*/', 2);
      s = end < 0 ? '' : s.slice(end + 2);
    } else {
      return /^[A-Za-z]+/.exec(s)?.[0].toUpperCase() ?? '';
    }
  }
}
