/** agent.toml texts shared by the config unit tests and the exit-code integration test. */
export const VALID = `
[fort]
id = "fort-1"
[store]
path = "data/agent.db"
[admin]
port = 8444
[admin.tls]
ca = "pki/ca.pem"
cert = "pki/agent.pem"
key = "pki/agent.key"
[api]
port = 8443
[api.tls]
cert = "pki/client-api.pem"
key = "pki/client-api.key"
`;

/** Each malformed file and the exact problem lines an operator must see. */
export const MALFORMED: { name: string; toml: string; problems: string[] }[] = [
  {
    name: 'port is a string',
    toml: VALID.replace('port = 8443', 'port = "abc"'),
    problems: ['api.port: expected integer 1..65535, got "abc"'],
  },
  {
    name: 'port out of range',
    toml: VALID.replace('port = 8444', 'port = 70000'),
    problems: ['admin.port: expected integer 1..65535, got 70000'],
  },
  {
    name: 'missing section field',
    toml: VALID.replace('port = 8444\n', ''),
    problems: ['admin.port: required field is missing'],
  },
  {
    name: 'unknown field (typo)',
    toml: VALID.replace('[store]', '[store]\npaht = "x"'),
    problems: ['store.paht: unknown field (check the spelling; see the configuration reference)'],
  },
  {
    name: 'bad log level',
    toml: `${VALID}\n[log]\nlevel = "verbose"\n`,
    problems: ['log.level: expected one of fatal, error, warn, info, debug, trace, got "verbose"'],
  },
  {
    name: 'fort id with a space',
    toml: VALID.replace('id = "fort-1"', 'id = "fort 1"'),
    problems: [
      'fort.id: expected 1-128 characters of letters, digits, ".", "_", "-" (not starting with a symbol), got "fort 1"',
    ],
  },
  {
    name: 'allowed_clients not a list',
    toml: VALID.replace('port = 8444', 'port = 8444\nallowed_clients = "fortctl"'),
    problems: ['admin.allowed_clients: expected a list of certificate common names, got "fortctl"'],
  },
  { name: 'invalid TOML syntax', toml: VALID.replace('port = 8443', 'port = = 8443'), problems: [] },
];
