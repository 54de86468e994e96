// Child process for the runner's kill test: runs `make d` with stage d hanging until it is killed.
import { defaultConfig } from '../../pipeline/config-core.ts';
import { make } from '../../pipeline/runner.ts';
import { memoryLogger } from '../../util/log.ts';
import { TOY_STAGES, toyControl } from './toy-stages.ts';

toyControl.hangIn = 'd';
await make({ targets: ['d'], config: defaultConfig(), dataDir: process.argv[2]!, stages: TOY_STAGES, log: memoryLogger() });
