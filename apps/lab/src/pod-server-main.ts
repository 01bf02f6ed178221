// `node dist/pod-server-main.js --name POD [--tcp PORT]... [--udp PORT]...`: see podserver.ts.
import { podServerMain } from './podserver.js';

podServerMain(process.argv.slice(2));
