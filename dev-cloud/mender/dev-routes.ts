import type { Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';
import { z } from 'zod';
import { sendRawProblem, issueDetail } from '../../lib/http-problem.js';
import { problemErrorHandler } from '../cloud-api/problems.js';
import type { DevCloudServer } from '../server.js';
import type { ArtifactRecord } from './artifacts.js';
import type { DeploymentRecord } from './deployments.js';
import type { DownloadRecord } from './download.js';
import { MenderOpError } from './errors.js';
import type { MenderServer } from './server.js';

const deviceRef = z.string().trim().min(1, { error: 'expected a device id or identity attribute value' });
const deployBody = z.strictObject({
  artifact_name: z.string().trim().min(1, { error: 'expected an artifact name' }),
  devices: z.array(deviceRef).min(1, { error: 'expected at least one device' }),
});
const deviceQuery = z.strictObject({ device: deviceRef.optional() });
const downloadsQuery = z.strictObject({ artifact: z.string().min(1).optional() });

const PROBLEM = {
  not_found: [404, 'FORT_ERR_NOT_FOUND', 'Not found'],
  conflict: [409, 'FORT_ERR_CONFLICT', 'Conflict'],
  bad_request: [400, 'FORT_ERR_BAD_REQUEST', 'Bad request'],
} as const;

/** An artifact as the operator sees it (not where the server keeps the file). */
export type ArtifactView = Omit<ArtifactRecord, 'file'>;
export const artifactView = ({ file: _file, ...a }: ArtifactRecord): ArtifactView => a;

/** A deployment with the download requests of the artifacts it sent (ranges: resumes). */
export interface DeploymentDetail extends DeploymentRecord {
  downloads: DownloadRecord[];
}

async function op<T>(reply: FastifyReply, f: () => T | Promise<T>, code = 200) {
  try {
    return reply
      .code(code)
      .header('cache-control', 'no-store')
      .send(await f());
  } catch (err) {
    if (!(err instanceof MenderOpError)) throw err;
    const [status, c, title] = PROBLEM[err.kind];
    return sendRawProblem(reply, status, c, title, err.message);
  }
}

/**
 * Developer-only operator routes of the update server (CLOUD-API.md "Update server"): upload
 * artifacts, accept devices, deploy, abort, read status, logs and downloads. A real Mender
 * server has its management API and UI for this.
 */
export async function registerMenderDevRoutes(app: DevCloudServer, mender: MenderServer) {
  await app.register(async (scope) => {
    scope.setErrorHandler(problemErrorHandler);
    // Artifacts are uploaded as the raw file: handed to the store as a stream.
    scope.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));

    scope.get('/dev/v1/mender/artifacts', async (_req, reply) => op(reply, () => mender.artifacts().map(artifactView)));
    scope.post('/dev/v1/mender/artifacts', async (req, reply) => {
      if (!req.headers['content-type']?.startsWith('application/octet-stream')) {
        return sendRawProblem(
          reply,
          400,
          'FORT_ERR_BAD_REQUEST',
          'Bad request',
          'send the artifact file as application/octet-stream',
        );
      }
      return op(reply, async () => artifactView(await mender.uploadStream(req.body as Readable)), 201);
    });

    scope.get('/dev/v1/mender/devices', async (_req, reply) => op(reply, () => mender.devices()));
    scope.get('/dev/v1/mender/auth_requests', async (_req, reply) => op(reply, () => mender.authAttempts()));
    scope.post<{ Params: { device: string } }>('/dev/v1/mender/devices/:device/accept', async (req, reply) =>
      op(reply, () => mender.accept(req.params.device)),
    );
    scope.post<{ Params: { device: string } }>('/dev/v1/mender/devices/:device/reject', async (req, reply) =>
      op(reply, () => mender.reject(req.params.device)),
    );

    scope.get('/dev/v1/mender/deployments', async (req, reply) => {
      const q = deviceQuery.safeParse(req.query);
      if (!q.success) return sendRawProblem(reply, 400, 'FORT_ERR_BAD_REQUEST', 'Bad request', issueDetail(q.error));
      return op(reply, () => mender.deployments(q.data.device ? { device: q.data.device } : {}));
    });
    scope.post('/dev/v1/mender/deployments', async (req, reply) => {
      const b = deployBody.safeParse(req.body);
      if (!b.success) return sendRawProblem(reply, 400, 'FORT_ERR_BAD_REQUEST', 'Bad request', issueDetail(b.error));
      return op(reply, () => mender.deploy({ artifactName: b.data.artifact_name, devices: b.data.devices }), 201);
    });
    scope.get<{ Params: { id: string } }>('/dev/v1/mender/deployments/:id', async (req, reply) =>
      op(reply, (): DeploymentDetail => {
        const d = mender.deployment(req.params.id);
        if (!d) throw new MenderOpError('not_found', `no deployment ${req.params.id}`);
        const sent = new Set(d.devices.map((x) => x.artifactId).filter((x) => x !== null));
        return { ...d, downloads: mender.downloads().filter((r) => sent.has(r.artifactId)) };
      }),
    );
    scope.post<{ Params: { id: string } }>('/dev/v1/mender/deployments/:id/abort', async (req, reply) =>
      op(reply, () => mender.abort(req.params.id)),
    );

    scope.get('/dev/v1/mender/downloads', async (req, reply) => {
      const q = downloadsQuery.safeParse(req.query);
      if (!q.success) return sendRawProblem(reply, 400, 'FORT_ERR_BAD_REQUEST', 'Bad request', issueDetail(q.error));
      return op(reply, () => mender.downloads(q.data.artifact ? { artifactId: q.data.artifact } : {}));
    });
  });
}
