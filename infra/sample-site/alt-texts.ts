/**
 * The demo's sample set: native-style alt texts written for this project (not scraped), six scenes in
 * each of the paper's eight languages. The images they go with are drawn by ./images.ts.
 */
export const SCENES = ['night-market', 'old-church', 'soup', 'river-sunset', 'lantern-festival', 'mountain-village'] as const;
export type Scene = (typeof SCENES)[number];

export const ALT_TEXTS: Record<string, Record<Scene, string>> = {
  ar: {
    'night-market': 'كشك لبيع الفلافل في سوق ليلي مزدحم بوسط المدينة القديمة',
    'old-church': 'واجهة مسجد قديم بمئذنة حجرية عالية عند الغروب',
    soup: 'طبق شوربة العدس الساخنة مع الليمون والخبز العربي',
    'river-sunset': 'مراكب شراعية على نهر النيل وقت غروب الشمس',
    'lantern-festival': 'فوانيس رمضان الملونة معلقة فوق شارع ضيق',
    'mountain-village': 'قرية جبلية بيوتها من الحجر تغطيها الثلوج في الشتاء',
  },
  cs: {
    'night-market': 'Stánek s trdelníky na vánočním trhu na Staroměstském náměstí',
    'old-church': 'Gotický kostel s dvěma věžemi nad střechami starého města',
    soup: 'Talíř česnečky se smaženými krutony a sýrem',
    'river-sunset': 'Vltava při západu slunce s výletní lodí pod Karlovým mostem',
    'lantern-festival': 'Lampionový průvod dětí v parku za podzimního večera',
    'mountain-village': 'Zasněžená horská vesnice s roubenými chalupami v Krkonoších',
  },
  hu: {
    'night-market': 'Lángossütő bódé egy esti vásáron a budapesti belvárosban',
    'old-church': 'A pécsi székesegyház négy tornya tiszta kék ég alatt',
    soup: 'Egy tál forró halászlé pirospaprikával és kenyérrel',
    'river-sunset': 'A Duna naplementekor, háttérben a Lánchíddal és egy sétahajóval',
    'lantern-festival': 'Színes lampionok egy nyári fesztivál utcáin',
    'mountain-village': 'Havas hegyi falu fagerendás házakkal a Bükkben',
  },
  ko: {
    'night-market': '광장시장 야시장에서 빈대떡을 부치는 노점',
    'old-church': '명동성당의 붉은 벽돌 첨탑과 맑은 하늘',
    soup: '뚝배기에 담긴 뜨거운 된장찌개와 밥 한 공기',
    'river-sunset': '해 질 녘 한강 위를 지나가는 유람선과 다리',
    'lantern-festival': '부처님 오신 날 조계사에 걸린 형형색색의 연등',
    'mountain-village': '눈 덮인 강원도 산골 마을의 초가집',
  },
  ru: {
    'night-market': 'Прилавок с блинами на вечерней ярмарке в центре города',
    'old-church': 'Белокаменная церковь с золотыми куполами на берегу реки',
    soup: 'Тарелка борща со сметаной и ломтиком чёрного хлеба',
    'river-sunset': 'Закат над Волгой и прогулочный теплоход у причала',
    'lantern-festival': 'Гирлянды и фонари на Масленицу на главной площади',
    'mountain-village': 'Заснеженная горная деревня с деревянными избами на Алтае',
  },
  sr: {
    'night-market': 'Тезга са печеним кестенима на вечерњем сајму у Београду',
    'old-church': 'Манастир Студеница са белим мермерним зидовима',
    soup: 'Чинија пасуља пребранца са црвеним луком и хлебом',
    'river-sunset': 'Ушће Саве у Дунав у сумрак, са сплавовима уз обалу',
    'lantern-festival': 'Шарени лампиони изнад улице током летњег фестивала',
    'mountain-village': 'Планинско село на Златибору прекривено снегом',
  },
  th: {
    'night-market': 'แผงขายผัดไทยในตลาดนัดกลางคืนที่คึกคักใจกลางกรุงเทพ',
    'old-church': 'พระปรางค์วัดอรุณริมแม่น้ำเจ้าพระยายามเย็น',
    soup: 'ต้มยำกุ้งน้ำข้นในชามร้อนพร้อมพริกและมะนาว',
    'river-sunset': 'เรือหางยาวแล่นบนแม่น้ำเจ้าพระยาตอนพระอาทิตย์ตก',
    'lantern-festival': 'โคมลอยนับร้อยบนท้องฟ้าในเทศกาลยี่เป็งที่เชียงใหม่',
    'mountain-village': 'หมู่บ้านชาวเขาบนดอยท่ามกลางหมอกยามเช้าฤดูหนาว',
  },
  vi: {
    'night-market': 'Quầy bán bánh mì ở chợ đêm đông đúc tại phố cổ Hà Nội',
    'old-church': 'Nhà thờ Đức Bà Sài Gòn với hai tháp chuông gạch đỏ',
    soup: 'Tô phở bò nóng hổi với hành lá, rau thơm và chanh',
    'river-sunset': 'Thuyền trên sông Hương lúc hoàng hôn ở Huế',
    'lantern-festival': 'Đèn lồng nhiều màu treo dọc phố cổ Hội An đêm rằm',
    'mountain-village': 'Bản làng vùng núi Sa Pa với ruộng bậc thang trong sương sớm',
  },
};
