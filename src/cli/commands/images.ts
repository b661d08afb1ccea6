import { resolve } from 'node:path';
import type { Command } from 'commander';
import { formatBytes } from '../../core/index.js';
import { EXIT, type Runner } from '../context.js';
import { localTime, table } from '../format.js';
import { followJob } from '../job-waiter.js';

/** Registers `image create|list|deploy`: templates made from machine points. */
export function registerImages(program: Command, run: Runner): void {
  const image = program
    .command('image')
    .summary('disk images (templates): make one from a machine point, deploy new machines from it');
  image
    .command('create')
    .summary('make a named image from a machine point in the vault')
    .description(
      'Pins a machine point under a name in its vault: it shares every block with the point, no retention ' +
        'removes it, and any number of new machines can be deployed from it.',
    )
    .argument('<item>', 'the machine item')
    .requiredOption('--name <name>', 'name of the new image')
    .option('--point <id|latest>', 'which point of the item', 'latest')
    .action((item: string, flags: { name: string; point: string }) =>
      run(async (ctx) => {
        const view = await (
          await ctx.api()
        ).createImage({ name: flags.name, item, point: flags.point });
        if (ctx.options.json) ctx.json(view);
        else
          ctx.say(
            `image ${view.name} created from ${view.item} point ${view.fromPoint} in vault ${view.vault}`,
          );
        return EXIT.ok;
      }),
    );
  image
    .command('list')
    .summary('list the images in the server’s vaults')
    .action(() =>
      run(async (ctx) => {
        const answer = await (await ctx.api()).listImages();
        if (ctx.options.json) {
          ctx.json(answer);
          return EXIT.ok;
        }
        if (answer.data.length === 0) {
          ctx.say("no images: make one with 'holdfast image create <machine> --name <image>'");
          return EXIT.ok;
        }
        const rows = answer.data.map((i) => [
          i.name,
          i.vault,
          `${i.item} ${i.fromPoint}`,
          i.disks.map((d) => `${d.name} (${formatBytes(d.size)})`).join(' '),
          localTime(i.createdAt),
        ]);
        for (const line of table(['NAME', 'VAULT', 'FROM', 'DISKS', 'CREATED'], rows))
          ctx.say(line);
        return EXIT.ok;
      }),
    );
  image
    .command('delete')
    .summary('delete an image (refused on an immutable vault)')
    .argument('<image>', 'the image')
    .action((name: string) =>
      run(async (ctx) => {
        const view = await (await ctx.api()).deleteImage(name);
        if (ctx.options.json) ctx.json(view);
        else ctx.say(`image ${view.name} deleted; its data goes with the vault's next prune`);
        return EXIT.ok;
      }),
    );
  image
    .command('deploy')
    .summary('deploy a new machine’s disks and configuration from an image, as a job')
    .description(
      'Writes the image’s disks under <target>/disks and its configuration under <target>/config. The image is ' +
        'restored once into a base copy on the server; each deployment clones it, sharing blocks copy-on-write ' +
        'where the file system can (btrfs, XFS) and copying sparsely elsewhere. With --new-name the configuration ' +
        'gets the new name, a fresh UUID and MAC addresses, and disk paths pointing at the new disks.',
    )
    .argument('<image>', 'the image')
    .requiredOption('--target <dir>', 'directory for the new machine (created if missing)')
    .option('--new-name <name>', 'the new machine’s name')
    .option('--wait', 'follow the job until it ends')
    .action((name: string, flags: { target: string; newName?: string; wait?: boolean }) =>
      run(async (ctx) => {
        const api = await ctx.api();
        const job = await api.deployImage(name, {
          target: resolve(flags.target),
          ...(flags.newName ? { newName: flags.newName } : {}),
        });
        return followJob(ctx, api, job, flags.wait === true);
      }),
    );
}
