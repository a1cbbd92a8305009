/**
 * The accounts half of the CaseStore contract (contract.ts runs it in every store's suite): users, sessions,
 * API tokens, the append-only audit trail, clinics on cases and specimens, soft delete and restore.
 */
import { expect, it } from 'vitest';
import type { CaseStore, NewCase } from './types.js';

const user = (name: string, role: 'clinic' | 'reviewer' | 'admin', clinic: string | null = null) => ({
  name,
  displayName: `Dr ${name}`,
  role,
  clinic,
  passwordHash: `hash-of-${name}`,
});

export function accountsContract(
  open: () => Promise<CaseStore>,
  newCase: (image: Buffer, extra?: Partial<NewCase>) => NewCase,
  runSql: (sql: string) => Promise<void>,
): void {
  it('stores users with unique names in any case; the first-user insert happens once', async () => {
    const { accounts } = await open();
    expect(await accounts.countUsers()).toBe(0);
    const first = await Promise.all([
      accounts.addUser(user('ana', 'admin'), { onlyIfNone: true }),
      accounts.addUser(user('bob', 'admin'), { onlyIfNone: true }),
    ]);
    expect(first.filter(Boolean)).toHaveLength(1);
    // Either insert may win the race; the winner's name in other letters is then taken.
    const winner = first.find(Boolean)!.name;
    expect(await accounts.addUser(user(winner.toUpperCase(), 'reviewer'))).toBeUndefined();
    expect(await accounts.addUser(user('carl', 'clinic', 'North'))).toMatchObject({
      name: 'carl',
      displayName: 'Dr carl',
      role: 'clinic',
      clinic: 'North',
      disabled: false,
    });
    expect(await accounts.findUser('CARL')).toMatchObject({ name: 'carl', passwordHash: 'hash-of-carl' });
    expect((await accounts.listUsers()).map((u) => u.name)).toHaveLength(2);
    expect(await accounts.setDisabled('nobody', true)).toBe(false);
  });

  it('finds a session user until it expires, is deleted or the user is disabled', async () => {
    const { accounts } = await open();
    const u = (await accounts.addUser(user('dee', 'reviewer')))!;
    const later = new Date(Date.now() + 60_000).toISOString();
    await accounts.addSession(u.id, 'a'.repeat(64), later);
    await accounts.addSession(u.id, 'b'.repeat(64), new Date(Date.now() - 1000).toISOString());
    await accounts.addSession(u.id, 'c'.repeat(64), later);
    expect((await accounts.sessionUser('a'.repeat(64)))?.name).toBe('dee');
    expect(await accounts.sessionUser('b'.repeat(64))).toBeUndefined();
    await accounts.deleteSession('a'.repeat(64));
    expect(await accounts.sessionUser('a'.repeat(64))).toBeUndefined();
    expect(await accounts.setDisabled('DEE', true)).toBe(true);
    expect(await accounts.sessionUser('c'.repeat(64))).toBeUndefined();
    expect((await accounts.findUser('dee'))?.disabled).toBe(true);
  });

  it('replaces a password hash and ends every other session of that user, not its tokens', async () => {
    const { accounts } = await open();
    const u = (await accounts.addUser(user('fay', 'reviewer')))!;
    const v = (await accounts.addUser(user('gus', 'reviewer')))!;
    const later = new Date(Date.now() + 60_000).toISOString();
    for (const s of ['1', '2', '3']) await accounts.addSession(u.id, s.repeat(64), later);
    await accounts.addSession(v.id, '4'.repeat(64), later);
    await accounts.addToken(u.id, { id: 'tok-f', sha256: '5'.repeat(64), name: 'script' });
    expect(await accounts.setPassword('FAY', 'new-hash', '2'.repeat(64))).toBe(true);
    expect((await accounts.findUser('fay'))?.passwordHash).toBe('new-hash');
    expect(await accounts.sessionUser('1'.repeat(64))).toBeUndefined();
    expect((await accounts.sessionUser('2'.repeat(64)))?.name).toBe('fay');
    expect(await accounts.sessionUser('3'.repeat(64))).toBeUndefined();
    expect((await accounts.sessionUser('4'.repeat(64)))?.name).toBe('gus');
    expect((await accounts.tokenUser('5'.repeat(64)))?.name).toBe('fay');
    // Without a session to keep (an admin's reset): all of them end.
    expect(await accounts.setPassword('fay', 'reset-hash')).toBe(true);
    expect(await accounts.sessionUser('2'.repeat(64))).toBeUndefined();
    expect((await accounts.findUser('gus'))?.passwordHash).toBe('hash-of-gus');
    expect(await accounts.setPassword('nobody', 'x')).toBe(false);
  });

  it('finds a token user until the token is revoked or the user disabled', async () => {
    const { accounts } = await open();
    const u = (await accounts.addUser(user('eve', 'clinic', 'South')))!;
    const t = await accounts.addToken(u.id, { id: 'tok-1', sha256: 'd'.repeat(64), name: 'uploader' });
    expect(t).toMatchObject({ id: 'tok-1', user: 'eve', name: 'uploader', revokedAt: null });
    expect((await accounts.tokenUser('d'.repeat(64)))?.clinic).toBe('South');
    await accounts.setDisabled('eve', true);
    expect(await accounts.tokenUser('d'.repeat(64))).toBeUndefined();
    await accounts.setDisabled('eve', false);
    expect((await accounts.tokenUser('d'.repeat(64)))?.name).toBe('eve');
    expect(await accounts.revokeToken('tok-1')).toBe(true);
    expect(await accounts.revokeToken('tok-1')).toBe(false);
    expect(await accounts.tokenUser('d'.repeat(64))).toBeUndefined();
    expect((await accounts.listTokens())[0].revokedAt).toEqual(expect.any(String));
  });

  it('appends audit entries, newest first, filtered by target', async () => {
    const store = await open();
    await store.accounts.audit({ actor: 'ana', action: 'create', targetType: 'case', targetId: 'c1' });
    await store.accounts.audit({
      actor: 'ana',
      action: 'delete',
      targetType: 'case',
      targetId: 'c1',
      detail: 'wrong patient',
    });
    await store.accounts.audit({ actor: 'bob', action: 'sign', targetType: 'specimen', targetId: 'S1' });
    // A failed sign-in: who was tried (the target), from where; the actor is nobody yet.
    await store.accounts.audit({
      actor: 'anonymous',
      action: 'sign-in.failed',
      targetType: 'user',
      targetId: 'bob',
      detail: 'wrong password',
      ip: '203.0.113.7',
    });
    const all = await store.accounts.auditEntries({ limit: 10, offset: 0 });
    expect(all.total).toBe(4);
    expect(all.entries.map((e) => e.action)).toEqual(['sign-in.failed', 'sign', 'delete', 'create']);
    expect(all.entries[0]).toMatchObject({ actor: 'anonymous', targetId: 'bob', ip: '203.0.113.7' });
    const failed = await store.accounts.auditEntries({ action: 'sign-in.failed', limit: 10, offset: 0 });
    expect(failed.entries.map((e) => e.targetId)).toEqual(['bob']);
    expect(all.entries[2]).toMatchObject({
      ip: null,
      actor: 'ana',
      targetType: 'case',
      targetId: 'c1',
      detail: 'wrong patient',
      at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    const c1 = await store.accounts.auditEntries({ targetType: 'case', targetId: 'c1', limit: 1, offset: 1 });
    expect(c1).toMatchObject({ total: 2, entries: [{ action: 'create' }] });
    // Append-only in the database itself, not only in the store's code.
    await expect(runSql("UPDATE audit_log SET actor = 'mallory'")).rejects.toThrow(/append-only/);
    await expect(runSql('DELETE FROM audit_log')).rejects.toThrow(/append-only/);
    expect((await store.accounts.auditEntries({ limit: 10, offset: 0 })).total).toBe(4);
  });

  it('stamps cases and specimens with their clinic and filters by it', async () => {
    const store = await open();
    await store.addSpecimen({ id: 'N-1', targetCount: 100, clinic: 'North' });
    await store.addSpecimen({ id: 'S-1', targetCount: 100 });
    const a = await store.add(newCase(Buffer.from('north'), { clinic: 'North', specimenId: 'N-1' }));
    await store.add(newCase(Buffer.from('elsewhere')));
    expect(a.clinic).toBe('North');
    expect((await store.getSpecimen('n-1'))?.clinic).toBe('North');
    const north = await store.list({ clinic: 'North', limit: 10, offset: 0 });
    expect(north.cases.map((c) => c.id)).toEqual([a.id]);
    expect((await store.list({ limit: 10, offset: 0 })).total).toBe(2);
    const specimens = await store.listSpecimens({ clinic: 'North', limit: 10, offset: 0 });
    expect(specimens.specimens.map((s) => s.id)).toEqual(['N-1']);
  });

  it('soft-deletes a case (hidden from lists, exports and its specimen) and restores it', async () => {
    const store = await open();
    await store.addSpecimen({ id: 'D-1', targetCount: 100 });
    const c = await store.add(newCase(Buffer.from('doomed'), { specimenId: 'D-1' }));
    const before = (await store.getSpecimen('D-1'))!;
    expect(await store.softDelete(c.id, { actor: 'ana', reason: 'wrong slide' })).toBe(true);
    expect(await store.softDelete(c.id, { actor: 'ana', reason: 'again' })).toBe(false);
    expect((await store.get(c.id))?.deleted).toEqual({
      at: expect.any(String),
      by: 'ana',
      reason: 'wrong slide',
    });
    expect((await store.list({ limit: 10, offset: 0 })).total).toBe(0);
    const iterated = [];
    for await (const x of store.iterate()) iterated.push(x);
    expect(iterated).toHaveLength(0);
    const hidden = (await store.getSpecimen('D-1'))!;
    expect(hidden).toMatchObject({ imageCount: 0 });
    expect(hidden.version).toBeGreaterThan(before.version);
    // The bytes stay: a restore brings back the case whole.
    expect((await store.readImage(c)).toString()).toBe('doomed');
    expect(await store.restore(c.id)).toBe(true);
    expect(await store.restore(c.id)).toBe(false);
    expect((await store.get(c.id))?.deleted).toBeNull();
    expect((await store.list({ limit: 10, offset: 0 })).cases.map((x) => x.id)).toEqual([c.id]);
    expect((await store.getSpecimen('D-1'))?.imageCount).toBe(1);
  });
}
