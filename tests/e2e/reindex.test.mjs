// `mahali reindex`: after an upgrade changes what is indexed, the search and spatial indexes
// are rebuilt from the stored resources, while the server runs, without new versions.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { e2eSkipReason, psql, runOk, useServer } from './lib/server.mjs';

const skip = e2eSkipReason();

describe('reindex', { skip }, () => {
  const S = useServer('reindex');

  it('rebuilds lost index rows; versions are untouched', async () => {
    const made = await S.req('POST', '/fhir/Location', {
      as: 'editor',
      body: { resourceType: 'Location', name: 'Reindexed Health Post', status: 'active', position: { latitude: 8.4844, longitude: -13.2344 } },
    });
    assert.equal(made.status, 201);
    const find = async () => (await S.req('GET', '/fhir/Location?near=8.4844|-13.2344|1|km&name=reindexed', {})).json.total;
    assert.equal(await find(), 1);
    // simulate an index that predates this release: drop the rows
    await psql('DELETE FROM sp_geo; DELETE FROM sp_string', S.dbname);
    assert.equal(await find(), 0, 'the index rows are gone');
    const out = await runOk(process.env.MAHALI_BIN, ['reindex', '--database', S.conninfo]);
    assert.match(out.stdout, /reindexed \d+ resources\n/);
    assert.equal(await find(), 1, 'found again after reindex');
    const again = await S.req('GET', `/fhir/Location/${made.json.id}`, {});
    assert.equal(again.json.meta.versionId, '1', 'no new version');
  });
});
