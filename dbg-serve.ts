import { Catalogue } from './lib/content/catalogue';
import { RqcastServer } from './lib/server/server';
async function main() {
  const catalogue = await Catalogue.load([process.argv[2]], {});
  const s = new RqcastServer({ catalogue, host: '10.9.0.1', port: 4433, tcp: {}, rateMbps: Number(process.argv[3] ?? 4000) } as any);
  await s.listen();
  console.log('listening');
  const t: any = (s as any).transports.get('tcp');
  setInterval(() => {
    const n = t.native;
    const ids = [...t.connections.keys()];
    for (const id of ids) console.log(JSON.stringify(n.connectionStats(id)));
    console.log(JSON.stringify(n.stats()));
  }, 1000);
}
main();
