import { describe, expect, it } from 'vitest';
import { reidentifyConfig } from './machine-restore.js';

const DOMAIN = `<domain type='kvm'>
  <name>web01</name>
  <uuid>6f1e1c2a-0000-4000-8000-00000000beef</uuid>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='none'/>
      <source file='/var/lib/libvirt/images/web01.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type="block" device="disk">
      <driver name="qemu" type="raw"/>
      <source dev="/dev/vg0/web01-data"/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='/isos/debian.iso'/>
    </disk>
    <interface type='network'><mac address='52:54:00:aa:bb:cc'/></interface>
  </devices>
</domain>
`;

const RESTORED = new Map([
  ['/var/lib/libvirt/images/web01.qcow2', '/restore/web02/disks/web01.qcow2'],
  ['/dev/vg0/web01-data', '/restore/web02/disks/web01-data'],
]);

describe('a new machine’s configuration', () => {
  it('points restored disks at their files in the restored format; a block disk becomes a file disk', () => {
    const { text, changes } = reidentifyConfig(DOMAIN, 'web02', RESTORED, 'raw');
    expect(text).toContain('<name>web02</name>');
    expect(text).not.toContain('6f1e1c2a-0000-4000-8000-00000000beef');
    expect(text).not.toContain('52:54:00:aa:bb:cc');
    expect(text).toMatch(/<mac address='52:54:00(:[0-9a-f]{2}){3}'/);
    expect(text).toContain(
      `<driver name='qemu' type='raw' cache='none'/>\n      <source file='/restore/web02/disks/web01.qcow2'/>`,
    );
    expect(text).toContain(
      `<disk type="file" device="disk">\n      <driver name="qemu" type="raw"/>\n      <source file="/restore/web02/disks/web01-data"/>`,
    );
    // A disk that was not restored (the installer image) is left exactly as it was.
    expect(text).toContain(
      `<disk type='file' device='cdrom'>\n      <driver name='qemu' type='raw'/>\n      <source file='/isos/debian.iso'/>`,
    );
    expect(changes.filter((c) => c.startsWith('disk '))).toHaveLength(2);
  });

  it('says qcow2 when the disks are restored as qcow2', () => {
    const { text } = reidentifyConfig(DOMAIN, 'web02', RESTORED, 'qcow2');
    expect(text.match(/type="qcow2"|type='qcow2'/g)).toHaveLength(2);
    expect(text).toContain(
      `<driver name='qemu' type='raw'/>\n      <source file='/isos/debian.iso'/>`,
    );
  });
});
