import { describe, expect, it } from 'vitest';
import { Presence, type PresenceCounts } from './presence.ts';

const settle = () => new Promise((r) => setTimeout(r, 30));

describe('presence across nodes', () => {
  it('pushes totals over every node, announces only its own counts, forgets a lost node', async () => {
    const pushed: [string, PresenceCounts][] = [];
    const announced: [string, PresenceCounts][] = [];
    const p = new Presence(10);
    p.on('totals', (room, c) => pushed.push([room, c]));
    p.on('local', (room, c) => announced.push([room, c]));
    p.setViewers('r', 2);
    p.addChatter('r', 1);
    p.setRemote('node-b', 'r', { viewers: 3, chatters: 1 });
    p.setRemote('node-c', 'r', { viewers: 5, chatters: 0 });
    await settle();
    expect(p.get('r')).toEqual({ viewers: 10, chatters: 2 });
    expect(p.local('r')).toEqual({ viewers: 2, chatters: 1 });
    expect(pushed.at(-1)).toEqual(['r', { viewers: 10, chatters: 2 }]);
    expect(announced).toEqual([['r', { viewers: 2, chatters: 1 }]]);

    p.dropNode('node-c');
    await settle();
    expect(pushed.at(-1)).toEqual(['r', { viewers: 5, chatters: 2 }]);
    expect(announced).toHaveLength(1); // a remote change is not re-announced

    p.setRemote('node-b', 'r', { viewers: 0, chatters: 0 });
    p.setViewers('r', 0);
    p.addChatter('r', -1);
    await settle();
    expect(p.get('r')).toEqual({ viewers: 0, chatters: 0 });
    expect(p.localRooms()).toEqual([]);
    expect(announced.at(-1)).toEqual(['r', { viewers: 0, chatters: 0 }]);
    p.close();
  });
});
