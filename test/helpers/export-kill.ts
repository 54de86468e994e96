// Child process for the export kill test: exports DATA_DIR (argv[2]) with shards of 5 rows and SIGKILLs itself
// half-way through writing the 5th shard file (shard 1's WebDataset tar), as a machine that loses power would.
import { writeSync } from 'node:fs';
import { resolveConfig } from '../../pipeline/config.ts';
import { runStageOnce } from '../../pipeline/context.ts';
import { lazyStage } from '../../pipeline/stage.ts';
import { exportDeclaration } from '../../stages/declarations.ts';
import { createExportStage } from '../../stages/export.ts';
import { writeFileAtomic } from '../../util/fsutil.ts';
import { memoryLogger } from '../../util/log.ts';

let files = 0;
const writeFile = (path: string, data: Uint8Array | string) => {
  if (/\d{6}\.\w+$/.test(path) && ++files === 5) {
    writeFileAtomic(path, data, (fd, buf, off, len) => {
      writeSync(fd, buf, off, Math.floor(len / 2));
      process.kill(process.pid, 'SIGKILL');
      return 0;
    });
  }
  writeFileAtomic(path, data);
};
const config = resolveConfig({ genres: ['ambient', 'metal', 'jazz'], image: { size: 24 }, train: { crop: 24 }, export: { shardSize: { rows: 5 } } }, 'test');
await runStageOnce(lazyStage(exportDeclaration, async () => createExportStage({ writeFile })), { config, dataDir: process.argv[2]!, log: memoryLogger() });
