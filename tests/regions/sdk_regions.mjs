// The TypeScript SDK against the region platform of tests/regions/test_regions.py: measures the
// regions, then joins `counter` with { region: 'auto' } once (GSF_REGIONS_JOINS times), and prints
// what it saw as one JSON line. The rooms stay joined until stdin closes (the test fills regions).
import { Client } from '../../clients/js/dist/index.js';
import { WebSocket } from '../../clients/js/node_modules/ws/wrapper.mjs';

const url = process.env.GSF_REGIONS_MATCHMAKER;
const client = new Client(url, { WebSocket, reconnect: false });
const measured = await client.measureRegions('counter', { samples: 4 });
const rooms = [];
const landed = [];
for (let i = 0; i < Number(process.env.GSF_REGIONS_JOINS ?? '1'); i++) {
  const room = await client.joinOrCreate('counter', { region: 'auto' });
  rooms.push(room);
  landed.push({ region: client.lastRegion, server_id: room.serverId });
}
console.log(JSON.stringify({ measured, latencies: client.latencies, landed }));
process.stdin.resume();
process.stdin.on('end', async () => {
  await Promise.all(rooms.map((room) => room.leave()));
  process.exit(0);
});
