import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DatasetError } from '../errors.js';
import { parseVocXml, readVocSplit, vocBoxes } from './voc.js';

const XML = `<annotation>
	<folder>JPEGImages</folder>
	<filename>BloodImage_00042.jpg</filename>
	<size>
		<width>640</width>
		<height>480</height>
		<depth>3</depth>
	</size>
	<object>
		<name>WBC</name>
		<pose>Unspecified</pose>
		<truncated>0</truncated>
		<difficult>0</difficult>
		<bndbox>
			<xmin>260</xmin>
			<ymin>177</ymin>
			<xmax>491</xmax>
			<ymax>376</ymax>
		</bndbox>
	</object>
	<object>
		<name>RBC</name>
		<truncated>1</truncated>
		<bndbox><xmin>1</xmin><ymin>333</ymin><xmax>87</xmax><ymax>480</ymax></bndbox>
	</object>
	<object>
		<name>RBC</name>
		<bndbox><xmin>50</xmin><ymin>60</ymin><xmax>50</xmax><ymax>60</ymax></bndbox>
	</object>
</annotation>`;

describe('parseVocXml', () => {
  it('reads file name, size and every object as corner, width and height', () => {
    const a = parseVocXml(XML);
    expect(a.filename).toBe('BloodImage_00042.jpg');
    expect([a.width, a.height]).toEqual([640, 480]);
    expect(a.objects).toHaveLength(3);
    expect(a.objects[0]).toEqual({
      name: 'WBC',
      x: 260,
      y: 177,
      width: 231,
      height: 199,
      truncated: false,
      difficult: false,
    });
    expect(a.objects[1]).toMatchObject({
      name: 'RBC',
      x: 1,
      y: 333,
      width: 86,
      height: 147,
      truncated: true,
    });
    expect(a.objects[2]).toMatchObject({ name: 'RBC', width: 0, height: 0 });
  });

  it('vocBoxes keeps one class and drops zero-size boxes (as in BCCD 00338/00343)', () => {
    const a = parseVocXml(XML);
    expect(vocBoxes(a, 'WBC')).toEqual([{ x: 260, y: 177, width: 231, height: 199, score: 1 }]);
    expect(vocBoxes(a, 'RBC')).toHaveLength(1);
    expect(vocBoxes(a, 'Platelets')).toEqual([]);
  });

  it('rejects text that is not a VOC annotation or has a broken box', () => {
    expect(() => parseVocXml('<html></html>')).toThrow(DatasetError);
    expect(() =>
      parseVocXml(
        '<annotation><object><name>WBC</name><bndbox><xmin>a</xmin></bndbox></object></annotation>',
      ),
    ).toThrow(/xmin/);
  });
});

describe('readVocSplit', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'voc-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('lists the split with parsed annotations and image paths', () => {
    mkdirSync(path.join(root, 'JPEGImages'));
    mkdirSync(path.join(root, 'Annotations'));
    mkdirSync(path.join(root, 'ImageSets', 'Main'), { recursive: true });
    writeFileSync(path.join(root, 'JPEGImages', 'BloodImage_00042.jpg'), 'not read here');
    writeFileSync(path.join(root, 'Annotations', 'BloodImage_00042.xml'), XML);
    writeFileSync(path.join(root, 'ImageSets', 'Main', 'val.txt'), 'BloodImage_00042\n\n');
    const samples = readVocSplit(root, 'val');
    expect(samples).toHaveLength(1);
    expect(samples[0].id).toBe('BloodImage_00042');
    expect(samples[0].imagePath).toBe(path.join(root, 'JPEGImages', 'BloodImage_00042.jpg'));
    expect(vocBoxes(samples[0].annotation, 'WBC')).toHaveLength(1);
  });

  it('says what is missing', () => {
    expect(() => readVocSplit(path.join(root, 'nope'), 'val')).toThrow(/not found/);
    expect(() => readVocSplit(path.join(root, 'JPEGImages'), 'val')).toThrow(/not a Pascal VOC dataset/);
    expect(() => readVocSplit(root, 'test')).toThrow(/available: val\.txt/);
    expect(() => readVocSplit(root, 'test')).toThrow(DatasetError);
  });
});
